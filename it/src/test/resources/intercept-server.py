import socket, sys, threading, time
# The receiver of InterceptionTest and InterceptionInboundTest: serves HTTP/1.0 on the given ports; a request carrying the
# tag module's tag gets a reply tagged the same way. With --client HOST PORT PATH instead of the log and ports: sends one
# request tagged as the tag module tags (a tagging agent's peer would), prints the reply without its tags and their count.
# Listens on IPv4 and IPv6.
TAG = sys.argv[1].encode(); EVERY = int(sys.argv[2]); LOG = sys.argv[3]; ports = [int(p) for p in sys.argv[4:]] if LOG != '--client' else []
lock = threading.Lock()
def tagged(data):
    out = bytearray(); i = 0
    while i < len(data):
        out += data[i:i+EVERY]; i += EVERY
        if i <= len(data) and len(data[i-EVERY:i]) == EVERY: out += TAG
    return bytes(out)
def serve(conn, port):
    conn.settimeout(5); raw = b''
    try:
        while b'\r\n\r\n' not in raw.replace(TAG, b''):
            chunk = conn.recv(65536)
            if not chunk: break
            raw += chunk
        req = raw.replace(TAG, b'')
        has = TAG in raw
        path = req.split(b' ')[1].decode() if b' ' in req else '?'
        peer = conn.getpeername()
        with lock, open(LOG, 'a') as f:
            f.write('port=%d tagged=%s tags=%d path=%s peer=%s:%d\n' % (port, has, raw.count(TAG), path, peer[0].removeprefix('::ffff:'), peer[1]))
        body = ('port=%d path=%s tagged=%s\n' % (port, path, has)).encode()
        reply = b'HTTP/1.0 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n' % len(body) + body
        conn.sendall(tagged(reply) if has else reply)
    except Exception as e:
        with lock, open(LOG, 'a') as f: f.write('port=%d error=%r\n' % (port, e))
    finally:
        conn.close()
def listen(port):
    s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0); s.bind(('::', port)); s.listen(128)
    while True:
        c, _ = s.accept(); threading.Thread(target=serve, args=(c, port), daemon=True).start()
if LOG == '--client':
    c = socket.create_connection((sys.argv[4], int(sys.argv[5])), 5); c.sendall(tagged(('GET %s HTTP/1.0\r\n\r\n' % sys.argv[6]).encode()))
    raw = b''
    while True:
        chunk = c.recv(65536)
        if not chunk: break
        raw += chunk
    print('tags=%d %s' % (raw.count(TAG), raw.replace(TAG, b'').decode().split('\r\n\r\n')[-1]), flush=True)
    sys.exit(0)
for p in ports: threading.Thread(target=listen, args=(p,), daemon=True).start()
print('ready', flush=True)
while True: time.sleep(3600)
