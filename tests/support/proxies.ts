import type { Subprocess } from 'bun';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { captureOutput, freePort, terminate } from './process.ts';

const README = new URL('../../README.md', import.meta.url).pathname;
/** The README's example upstream: the server's default port on loopback. */
const UPSTREAM = '127.0.0.1:1080';

/**
 * The fenced block of `language` in the README's "Behind a reverse proxy" section: the tests run
 * exactly what the README tells users to write.
 */
export function readmeConfig(language: 'nginx' | 'caddy'): string {
  const readme = readFileSync(README, 'utf8');
  const section = readme.slice(readme.indexOf('\n## Behind a reverse proxy\n'));
  const match = section.slice(0, section.indexOf('\n## ', 1)).match(new RegExp(`\`\`\`${language}\\n([\\s\\S]*?)\`\`\``));
  if (!match) throw new Error(`README has no ${language} block under "Behind a reverse proxy"`);
  return match[1]!;
}

/** Replaces `from` in `text`, failing when it is not there (the README changed shape). */
function swap(text: string, from: string, to: string): string {
  if (!text.includes(from)) throw new Error(`README proxy config no longer contains ${JSON.stringify(from)}`);
  return text.replaceAll(from, to);
}

export interface ProxyProcess {
  /** Where clients reach the proxy, e.g. http://localhost:PORT */
  origin: string;
  port: number;
  output(): string;
  stop(): Promise<void>;
}

async function run(command: string[], dir: string, port: number, env: Record<string, string> = {}): Promise<ProxyProcess> {
  const proc: Subprocess<'ignore', 'pipe', 'pipe'> = Bun.spawn(command, {
    cwd: dir,
    env: { ...process.env, ...env },
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const output = captureOutput(proc);
  const stop = async () => {
    await terminate(proc);
    await rm(dir, { recursive: true, force: true });
  };
  // Ready once it accepts a connection on its port.
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`${command[0]} did not start (exit ${proc.exitCode}):\n${output.text()}`);
    }
    const up = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1000) }).then(
      () => true,
      () => false,
    );
    if (up) break;
    await Bun.sleep(50);
  }
  return { origin: `http://localhost:${port}`, port, output: output.text, stop };
}

/**
 * The README's nginx server block in front of the server at `upstreamPort`, as a foreground process
 * writing only into its own temp dir, on a free loopback port.
 */
export async function startNginx(upstreamPort: number): Promise<ProxyProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'tusflow-nginx-'));
  const port = await freePort();
  let server = swap(readmeConfig('nginx'), 'listen 80;', `listen 127.0.0.1:${port};`);
  server = swap(server, UPSTREAM, `127.0.0.1:${upstreamPort}`);
  const conf = `worker_processes 1;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${server}
}
`;
  await writeFile(join(dir, 'nginx.conf'), conf);
  return run(['nginx', '-e', 'stderr', '-p', dir, '-c', join(dir, 'nginx.conf'), '-g', `daemon off; pid ${dir}/nginx.pid; error_log stderr;`], dir, port);
}

/**
 * The README's Caddyfile site in front of the server at `upstreamPort`: admin API and automatic
 * HTTPS off, plain HTTP on a free loopback port, its storage in its own temp dir.
 */
export async function startCaddy(upstreamPort: number): Promise<ProxyProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'tusflow-caddy-'));
  const port = await freePort();
  let site = swap(readmeConfig('caddy'), 'up.example.org {', `http://localhost:${port} {\n\tbind 127.0.0.1`);
  site = swap(site, UPSTREAM, `127.0.0.1:${upstreamPort}`);
  const caddyfile = `{
	admin off
	auto_https off
	storage file_system ${dir}/data
}

${site}`;
  await writeFile(join(dir, 'Caddyfile'), caddyfile);
  return run(['caddy', 'run', '--config', join(dir, 'Caddyfile'), '--adapter', 'caddyfile'], dir, port, {
    HOME: dir,
    XDG_CONFIG_HOME: join(dir, 'config'),
    XDG_DATA_HOME: join(dir, 'data'),
  });
}
