/**
 * Round trip of a small message from this process (in the kernel's role) to a child process and
 * back: raw nanomsg pair frames beside full envelopes (seal, AEAD, msgpackr, schema check, open).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Channel } from '../protocol/channel';
import { EnvelopeCodec } from '../protocol/envelope';
import { deriveDirectionKeys, newChannelSecret } from '../protocol/keys';
import { PeerId } from '../protocol/layout';
import { NanomsgTransport } from '../protocol/transport';
import { nowUs, summarise, type LatencySummary } from './stats';

const PAYLOAD = { symbol: 'SPX', from: '2000-01-03', to: '2020-04-17', note: 'x'.repeat(40) };

async function startPeer(mode: 'raw' | 'envelope', endpoint: string, secret: Uint8Array): Promise<ChildProcess> {
  const child = spawn(process.execPath, [path.join(__dirname, 'echo-peer.js'), mode, endpoint], { stdio: ['pipe', 'pipe', 'inherit', 'pipe'] });
  (child.stdio[3] as NodeJS.WritableStream).end(Buffer.from(secret));
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  return child;
}

export async function measureRoundTrips(count: number): Promise<{ raw: LatencySummary; envelope: LatencySummary }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'backtestr-bench-'));
  try {
    return { raw: await rawRoundTrips(dir, count), envelope: await envelopeRoundTrips(dir, count) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function rawRoundTrips(dir: string, count: number): Promise<LatencySummary> {
  const endpoint = `ipc://${path.join(dir, 'raw.ipc')}`;
  const transport = new NanomsgTransport(endpoint, 'bind');
  const child = await startPeer('raw', endpoint, newChannelSecret());
  const frame = new TextEncoder().encode(JSON.stringify(PAYLOAD));
  const latencies: number[] = [];
  const started = nowUs();
  for (let i = 0; i < count; i++) {
    const sent = nowUs();
    await new Promise<void>((resolve) => {
      transport.once('frame', () => resolve());
      transport.send(frame);
    });
    latencies.push(nowUs() - sent);
  }
  const wallMs = (nowUs() - started) / 1000;
  child.stdin!.end();
  transport.close();
  return summarise(latencies, wallMs);
}

async function envelopeRoundTrips(dir: string, count: number): Promise<LatencySummary> {
  const endpoint = `ipc://${path.join(dir, 'envelope.ipc')}`;
  const secret = newChannelSecret();
  const transport = new NanomsgTransport(endpoint, 'bind');
  const channel = new Channel(transport, new EnvelopeCodec(deriveDirectionKeys(secret, PeerId.kernel, PeerId.monitor), PeerId.kernel, PeerId.monitor), 'echo');
  const child = await startPeer('envelope', endpoint, secret);
  const latencies: number[] = [];
  const started = nowUs();
  for (let i = 0; i < count; i++) {
    const sent = nowUs();
    await channel.request('monitor.echo', PAYLOAD, 5000);
    latencies.push(nowUs() - sent);
  }
  const wallMs = (nowUs() - started) / 1000;
  child.stdin!.end();
  channel.close('benchmark done');
  return summarise(latencies, wallMs);
}
