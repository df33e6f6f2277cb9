/**
 * A child process for the round-trip benchmark. In 'raw' mode it echoes nanomsg frames as they
 * are; in 'envelope' mode it opens each envelope and answers with a sealed Response, exactly as a
 * service's channel does. The channel secret arrives on fd 3, as for real services.
 */
import { Channel } from '../protocol/channel';
import { EnvelopeCodec } from '../protocol/envelope';
import { deriveDirectionKeys } from '../protocol/keys';
import { PeerId } from '../protocol/layout';
import { NanomsgTransport } from '../protocol/transport';
import { readSecretFromPipe } from '../services/runtime/secret-pipe';

const [mode, endpoint] = process.argv.slice(2);
const secret = readSecretFromPipe();
const transport = new NanomsgTransport(endpoint, 'connect');

if (mode === 'raw') {
  transport.on('frame', (frame) => transport.send(frame));
} else {
  const keys = deriveDirectionKeys(secret, PeerId.monitor, PeerId.kernel);
  const channel = new Channel(transport, new EnvelopeCodec(keys, PeerId.monitor, PeerId.kernel), 'kernel');
  channel.onRequest(async (_method, params) => params);
}
process.stdin.on('data', () => undefined);
process.stdin.on('end', () => process.exit(0));
process.stdout.write('ready\n');
