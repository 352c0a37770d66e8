module wsdiag-testgen

go 1.25.0

require github.com/gorilla/websocket v1.5.3

require (
	golang.org/x/net v0.55.0
	golang.org/x/text v0.37.0 // indirect
)
