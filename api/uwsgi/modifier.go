package uwsgi

import "strconv"

// Modifier is a packet's modifier1: it selects the handler on the server.
type Modifier uint8

// The modifier1 values of the uwsgi protocol, as uWSGI numbers them.
const (
	ModWSGI              Modifier = 0   // Python WSGI request
	ModPSGI              Modifier = 5   // Perl PSGI request
	ModLua               Modifier = 6   // Lua WSAPI request
	ModRack              Modifier = 7   // Ruby Rack request
	ModJVM               Modifier = 8   // JWSGI, Ring or Servlet (modifier2 picks)
	ModCGI               Modifier = 9   // CGI request
	ModManagement        Modifier = 10  // management interface (never implemented by uWSGI)
	ModGo                Modifier = 11  // Go request (uWSGI's gccgo plugin)
	ModPHP               Modifier = 14  // PHP request
	ModMono              Modifier = 15  // Mono ASP.NET request
	ModSpooler           Modifier = 17  // spooler job
	ModSymcall           Modifier = 18  // direct call of a C symbol
	ModSSI               Modifier = 19  // server side includes
	ModEval              Modifier = 22  // raw code evaluation (modifier2 picks the language)
	ModXSLT              Modifier = 23  // XSLT
	ModV8                Modifier = 24  // JavaScript (JSGI) request
	ModGridFS            Modifier = 25  // GridFS
	ModFastFunc          Modifier = 26  // FastFuncs (the seed table says GlusterFS)
	ModGlusterFS         Modifier = 27  // GlusterFS (the seed table says FastFuncs)
	ModRADOS             Modifier = 28  // RADOS
	ModWSGIStripped      Modifier = 30  // WSGI with SCRIPT_NAME stripped from PATH_INFO
	ModMessage           Modifier = 31  // generic message passing (reserved)
	ModCharArray         Modifier = 32  // array of char passing (reserved)
	ModMarshal           Modifier = 33  // marshalled object passing (reserved)
	ModWebDAV            Modifier = 35  // WebDAV
	ModSNMP              Modifier = 48  // SNMP (UDP; first byte of an ASN.1 sequence)
	ModHTTPResponse      Modifier = 72  // "HTTP": a raw HTTP response where a header was expected
	ModMulticastAnnounce Modifier = 73  // multicast announce
	ModMulticast         Modifier = 74  // multicast message
	ModClusterNode       Modifier = 95  // cluster membership
	ModRemoteLog         Modifier = 96  // remote logging
	ModReloadBrutal      Modifier = 97  // brutal reload request
	ModReloadGraceful    Modifier = 98  // graceful reload request
	ModConfigRequest     Modifier = 99  // configuration request
	ModPing              Modifier = 100 // ping / pong
	ModEcho              Modifier = 101 // echo service
	ModLegion            Modifier = 109 // legion message (UDP)
	ModSignal            Modifier = 110 // uwsgi signal, modifier2 is the signal number
	ModCache             Modifier = 111 // cache operations, modifier2 is the command
	ModEmperor           Modifier = 115 // emperor to vassal configuration
	ModCorerouter        Modifier = 123 // corerouter special condition
	ModRPC               Modifier = 173 // RPC, modifier2 picks the mode
	ModCloseMark         Modifier = 200 // close mark for persistent connections
	ModSubscription      Modifier = 224 // subscription packet
	ModExample           Modifier = 250 // example plugin
	ModResponse          Modifier = 255 // generic response, modifier2 is the result
)

// modifier2 values of RPC requests and responses (modifier1 173).
const (
	RPCFramed uint8 = 0 // request: answer with a framed result; response: 16-bit form
	RPCRaw    uint8 = 1 // request: answer with the raw result bytes, then close
	RPCHTTP   uint8 = 2 // request: PATH_INFO bridge, answer raw HTTP
	RPCXML    uint8 = 3 // request: XML-RPC bridge (broken in uWSGI 2.0.21)
	RPCLarge  uint8 = 5 // response: vars block with CONTENT_LENGTH, then the result
)

// modifier2 values of cache requests (modifier1 111).
const (
	CacheSimpleGet uint8 = 0
	CacheSimpleSet uint8 = 1
	CacheSimpleDel uint8 = 2
	CacheDictKey   uint8 = 3
	CacheDictGet   uint8 = 4
	CacheStream    uint8 = 5
	CacheDump      uint8 = 6
	CacheDumpReply uint8 = 7
	CacheMagic     uint8 = 17
)

// modifier2 values of ping packets (modifier1 100) and reload requests (97, 98).
const (
	PingRequest    uint8 = 0
	PingPong       uint8 = 1
	ReloadRequest  uint8 = 0
	ReloadConfirm  uint8 = 1
	ResponseFailed uint8 = 0 // generic response (255): not accepted
	ResponseOK     uint8 = 1 // generic response (255): accepted
)

var modifierNames = map[Modifier]string{
	ModWSGI: "wsgi", ModPSGI: "psgi", ModLua: "lua", ModRack: "rack", ModJVM: "jvm",
	ModCGI: "cgi", ModManagement: "management", ModGo: "go", ModPHP: "php", ModMono: "mono",
	ModSpooler: "spooler", ModSymcall: "symcall", ModSSI: "ssi", ModEval: "eval",
	ModXSLT: "xslt", ModV8: "v8", ModGridFS: "gridfs", ModFastFunc: "fastfunc",
	ModGlusterFS: "glusterfs", ModRADOS: "rados", ModWSGIStripped: "wsgi-stripped",
	ModMessage: "message", ModCharArray: "char-array", ModMarshal: "marshal",
	ModWebDAV: "webdav", ModSNMP: "snmp", ModHTTPResponse: "http-response",
	ModMulticastAnnounce: "multicast-announce", ModMulticast: "multicast",
	ModClusterNode: "cluster-node", ModRemoteLog: "remote-log",
	ModReloadBrutal: "reload-brutal", ModReloadGraceful: "reload-graceful",
	ModConfigRequest: "config-request", ModPing: "ping", ModEcho: "echo",
	ModLegion: "legion", ModSignal: "signal", ModCache: "cache", ModEmperor: "emperor",
	ModCorerouter: "corerouter", ModRPC: "rpc", ModCloseMark: "close-mark",
	ModSubscription: "subscription", ModExample: "example", ModResponse: "response",
}

// String returns the modifier's short name followed by its number, e.g.
// "rpc(173)", or just the number when the protocol does not define it.
func (m Modifier) String() string {
	n := strconv.Itoa(int(m))
	if name, ok := modifierNames[m]; ok {
		return name + "(" + n + ")"
	}
	return n
}

// IsRequest reports whether m carries an HTTP-style request: a vars block,
// then CONTENT_LENGTH body bytes, answered with raw HTTP.
func (m Modifier) IsRequest() bool {
	switch m {
	case ModWSGI, ModPSGI, ModLua, ModRack, ModJVM, ModCGI, ModGo, ModPHP, ModMono,
		ModSymcall, ModSSI, ModXSLT, ModV8, ModGridFS, ModGlusterFS, ModRADOS,
		ModWSGIStripped, ModWebDAV:
		return true
	}
	return false
}
