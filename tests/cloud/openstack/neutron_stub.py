"""The Neutron reads Nova makes for servers without ports, answered with empty lists on
127.0.0.1:9696 (Nova's API answers 500 when showing a server without a network endpoint).
Glance and Nova stay real; the tests never create networks."""

import json
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EMPTY = {name: {name.replace("-", "_"): []} for name in
         ("ports", "security-groups", "networks", "extensions", "floatingips", "subnets")}
VERSIONS = {"versions": [{"id": "v2.0", "status": "CURRENT",
                          "links": [{"rel": "self", "href": "http://127.0.0.1:9696/v2.0/"}]}]}


class Handler(BaseHTTPRequestHandler):
    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = self.path.split("?")[0].rstrip("/")
        if path == "":
            return self._send(200, VERSIONS)
        m = re.match(r"^/v2\.0/([a-z-]+)(?:\.json)?$", path)
        if m and m.group(1) in EMPTY:
            return self._send(200, EMPTY[m.group(1)])
        return self._send(404, {"NeutronError": {"type": "NotFound", "message": path}})

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", 9696), Handler).serve_forever()
