// Child processes of the Node tests: the gatewayz binary (serve, mock-provider)
// started on port 0 and found through its port file.
//
// A Child keeps what the process prints: stdout whole (up to 64 MiB, the log
// lines tests read), stderr bounded, both for diagnostics.

import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const gatewayzBin =
  process.env.GATEWAYZ_BIN || path.resolve(here, '../../../build/src/app/gatewayz');
export const startTimeoutMs = 30_000; // sanitizer builds start slowly
export const exitTimeoutMs = 30_000;

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class Child {
  // `env`: the child's environment (default: this process's).
  constructor(name, args, env = undefined) {
    this.name = name;
    this.stdout = '';
    this.stderr = '';
    this.proc = spawn(gatewayzBin, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env } : {}) });
    this.proc.stdout.on('data', (chunk) => {
      if (this.stdout.length < 64 * 1024 * 1024) this.stdout += chunk.toString();
    });
    this.proc.stderr.on('data', (chunk) => {
      this.stderr += chunk.toString();
      if (this.stderr.length > 64 * 1024) this.stderr = this.stderr.slice(-64 * 1024);
    });
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => resolve({ code, signal }));
      this.proc.on('error', (err) => resolve({ code: null, signal: null, error: err }));
    });
    this.exitStatus = null;
    this.exited.then((status) => {
      this.exitStatus = status;
    });
  }

  get running() {
    return this.exitStatus === null;
  }

  // stdout's complete lines (a line still being written is left out).
  lines() {
    const end = this.stdout.lastIndexOf('\n');
    return end < 0 ? [] : this.stdout.slice(0, end).split('\n');
  }

  describe() {
    return `${this.name} (${gatewayzBin} ${this.proc.spawnargs.slice(1).join(' ')})\n` +
      `--- stdout (tail) ---\n${this.stdout.slice(-16 * 1024)}\n--- stderr ---\n${this.stderr}--- end ---`;
  }

  // Sends SIGTERM and waits for the exit; SIGKILL if it does not come in time.
  async terminate() {
    if (!this.running) return this.exitStatus;
    this.proc.kill('SIGTERM');
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve(null), exitTimeoutMs);
    });
    const status = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    if (status !== null) return status;
    this.proc.kill('SIGKILL');
    await this.exited;
    return { code: null, signal: 'SIGTERM timed out', killed: true };
  }
}

export async function waitForPort(child, portFile) {
  const deadline = Date.now() + startTimeoutMs;
  while (Date.now() < deadline) {
    if (!child.running) {
      throw new Error(`${child.name} exited early: ${JSON.stringify(child.exitStatus)}\n${child.describe()}`);
    }
    try {
      const text = (await readFile(portFile, 'utf8')).trim();
      const port = Number.parseInt(text, 10);
      if (port > 0 && port < 65536 && String(port) === text) return port;
    } catch (err) {
      if (err.code !== 'ENOENT') throw err;
    }
    await sleep(25);
  }
  throw new Error(`${child.name} wrote no port to ${portFile} in ${startTimeoutMs} ms\n${child.describe()}`);
}

// A port nothing listens on (bound, then closed): a provider or collector
// there fails with a connection error.
export async function closedPort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}
