package host

// MaxIdleAcceptors is how many accept workers a listener may keep waiting
// once its connections are gone.
var MaxIdleAcceptors = maxIdleAcceptors
