// Holds many client connections open against a server, for bench/connections.sh:
//   idle       connections that made one keep-alive request (GET /health),
//              read the answer and then send nothing: what a large pool of
//              clients between requests looks like to the server;
//   slowloris  connections that send a request's headers one line at a
//              time, a line every --drip-ms, and never finish them; when the
//              server closes one (its header timeout), another replaces it.
//
//   node bench/hold-connections.mjs --port P [--idle 10000] [--slowloris 200]
//        [--sources 127.0.0.2,127.0.0.3] [--drip-ms 1000] [--batch 256]
//
// The idle connections are spread round-robin over --sources (loopback
// addresses: the whole of 127.0.0.0/8 is loopback on Linux), so a
// per-address cap on the server does not refuse them. A status line of JSON
// is printed on stdout once all idle connections are answered ("ready") and
// every second after; on SIGTERM or SIGINT the final one ("final"), then exit.
// Only loopback targets are allowed.
import net from 'node:net';

const args = new Map();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ''), process.argv[i + 1]);
const port = Number(args.get('port'));
const host = '127.0.0.1';
const idleTarget = Number(args.get('idle') ?? 10000);
const slowTarget = Number(args.get('slowloris') ?? 200);
const sources = (args.get('sources') ?? '127.0.0.1').split(',').filter(Boolean);
const dripMs = Number(args.get('drip-ms') ?? 1000);
const batch = Number(args.get('batch') ?? 256);
if (!Number.isInteger(port) || port <= 0) throw new Error('--port is required');
for (const s of sources) if (!s.startsWith('127.')) throw new Error(`--sources must be loopback: ${s}`);

const stats = {
  idle_open: 0,        // answered and still open
  idle_answered: 0,    // ever answered (200 on /health)
  idle_refused: 0,     // closed or failed before an answer
  idle_closed_later: 0, // closed by the server after the answer
  slow_open: 0,
  slow_closed_by_server: 0,
  slow_lines_sent: 0,
};
const sockets = new Set();
let stopping = false;

function openIdle(index) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, localAddress: sources[index % sources.length] });
    sockets.add(socket);
    let answered = false;
    let seen = '';
    socket.setNoDelay(true);
    socket.on('connect', () => socket.write(`GET /health HTTP/1.1\r\nHost: ${host}\r\n\r\n`));
    socket.on('data', (chunk) => {
      if (answered) return;
      seen += chunk.toString('latin1');
      // The whole answer: headers and a Content-Length body.
      const end = seen.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = /content-length:\s*(\d+)/i.exec(seen.slice(0, end));
      if (length && seen.length < end + 4 + Number(length[1])) return;
      answered = true;
      if (seen.startsWith('HTTP/1.1 200')) {
        stats.idle_answered += 1;
        stats.idle_open += 1;
      } else {
        stats.idle_refused += 1;
      }
      resolve();
    });
    const gone = () => {
      sockets.delete(socket);
      if (!answered) {
        stats.idle_refused += 1;
        answered = true;
        resolve();
      } else if (seen.startsWith('HTTP/1.1 200')) {
        stats.idle_open -= 1;
        if (!stopping) stats.idle_closed_later += 1;
      }
    };
    socket.on('error', () => {});
    socket.on('close', gone);
  });
}

function openSlow() {
  if (stopping) return;
  const socket = net.connect({ host, port });
  sockets.add(socket);
  let timer = null;
  socket.on('connect', () => {
    stats.slow_open += 1;
    socket.write(`GET /health HTTP/1.1\r\nHost: ${host}\r\n`);
    timer = setInterval(() => {
      stats.slow_lines_sent += 1;
      socket.write(`X-Drip-${stats.slow_lines_sent}: a\r\n`);
    }, dripMs);
  });
  socket.on('error', () => {});
  socket.on('close', (hadError) => {
    sockets.delete(socket);
    if (timer) {
      clearInterval(timer);
      stats.slow_open -= 1;
    }
    if (!stopping) {
      stats.slow_closed_by_server += 1;
      setTimeout(openSlow, 50 + (hadError ? 200 : 0));
    }
  });
}

function report(phase) {
  process.stdout.write(`${JSON.stringify({ phase, ...stats })}\n`);
}

for (let i = 0; i < slowTarget; ++i) openSlow();
for (let i = 0; i < idleTarget; i += batch) {
  const round = [];
  for (let j = i; j < Math.min(i + batch, idleTarget); ++j) round.push(openIdle(j));
  await Promise.all(round);
}
report('ready');
const ticker = setInterval(() => report('status'), 1000);

function stop() {
  if (stopping) return;
  stopping = true;
  clearInterval(ticker);
  report('final');
  for (const s of sockets) s.destroy();
  setTimeout(() => process.exit(0), 100);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
