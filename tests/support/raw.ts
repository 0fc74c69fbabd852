import { connect } from 'node:net';

/**
 * Sends a request's head and only part of its body over a raw socket, then drops the connection:
 * what a client on a failing network does. Resolves once the socket is closed.
 */
export function sendPartialThenDrop(url: string, headers: Record<string, string>, body: Uint8Array): Promise<void> {
  const { hostname, port, pathname } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) }, () => {
      const head = [`PATCH ${pathname} HTTP/1.1`, `Host: ${hostname}:${port}`, 'Connection: close']
        .concat(Object.entries(headers).map(([k, v]) => `${k}: ${v}`))
        .join('\r\n');
      socket.write(`${head}\r\n\r\n`);
      socket.write(body, () => setTimeout(() => socket.destroy(), 50));
    });
    socket.on('close', () => resolve());
    socket.on('error', reject);
  });
}
