/* global process, Buffer */
// Baseline for the ingest benchmark: a bare Node HTTPS server with the hub's silo-listener TLS settings (server key
// and certificate, minVersion TLSv1.2, client certificates required and verified against the given CA) that reads
// and discards every request body, then answers a small JSON receipt. Prints its port on stdout.
// Input: one JSON line on stdin { keyPem, certPem, clientCaPem }.
import { createServer } from 'node:https';

let input = '';
process.stdin.on('data', (c) => (input += c.toString()));
process.stdin.on('end', () => {
  const { keyPem, certPem, clientCaPem } = JSON.parse(input);
  const server = createServer(
    {
      key: keyPem,
      cert: certPem,
      minVersion: 'TLSv1.2',
      ca: [clientCaPem],
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      let bytes = 0;
      req.on('data', (c) => (bytes += c.length));
      req.on('end', () => {
        const body = Buffer.from(JSON.stringify({ accepted: true, bytes }));
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
        res.end(body);
      });
    },
  );
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
});
