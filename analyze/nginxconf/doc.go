// Package nginxconf reads an nginx configuration (the output of `nginx -T`,
// or a file with its includes) and answers, for one request seen on the
// wire, what nginx would answer for itself: which server and location
// block handled it (listen address, server_name, location modifiers and
// nesting, by nginx's own order), which upstream directives were in force
// after inheritance, what keeps a WebSocket upgrade from passing, and a
// unified diff that fixes it. It never edits a file.
package nginxconf
