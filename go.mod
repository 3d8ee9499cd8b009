module github.com/scripthost/scripthost

go 1.26
