import socket, sys, threading, time
# The receiver of InterceptionUdpTest: on each given UDP port, records the name each DNS query asks and the app id of the
# dns-tag module's EDNS option (code 65001, the last option of the query: length, flags, app id), then forwards the
# query as it came to dnsmasq on 127.0.0.1:UPSTREAM and sends its answer back. Listens on IPv4 and IPv6.
LOG = sys.argv[1]; UPSTREAM = int(sys.argv[2]); ports = [int(p) for p in sys.argv[3:]]
lock = threading.Lock()
def name(q):
    i = 12; labels = []
    while i < len(q) and q[i]:
        labels.append(q[i+1:i+1+q[i]].decode()); i += 1 + q[i]
    return '.'.join(labels)
def app(q):
    i = q.rfind(b'\xfd\xe9')
    if i < 12 or i + 5 > len(q): return '-'
    n = int.from_bytes(q[i+2:i+4], 'big')
    return q[i+5:i+4+n].decode() if i + 4 + n == len(q) else '-'
def serve(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0); s.bind(('::', port))
    while True:
        q, peer = s.recvfrom(65535)
        with lock, open(LOG, 'a') as f:
            f.write('port=%d name=%s app=%s peer=%s\n' % (port, name(q), app(q), peer[0].removeprefix('::ffff:')))
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(3)
        try:
            u.sendto(q, ('127.0.0.1', UPSTREAM)); s.sendto(u.recv(65535), peer)
        except OSError:
            pass
        finally:
            u.close()
for p in ports: threading.Thread(target=serve, args=(p,), daemon=True).start()
print('ready', flush=True)
while True: time.sleep(3600)
