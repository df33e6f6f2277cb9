/**
 * Child process for the sealed store crash tests. Reads one JSON job from stdin (so the test
 * password never sits in argv), opens the keyring and the store from the compiled build/, then
 * writes until it is killed: imports and backtest saves in turn. After each acknowledged write
 * it prints "acked import SYMBOL COUNT" or "acked backtest ID MARKER". With `job.rekey` it
 * rekeys the store in a loop instead and prints "rekeyed GENERATION" after each.
 */
'use strict';
const path = require('node:path');
const pino = require('pino');

const build = path.join(__dirname, '../../../build/services/storage');
const { Keyring } = require(path.join(build, 'crypto/index.js'));
const { SealedStore } = require(path.join(build, 'sealed/sealed-store.js'));
const { replaceBars } = require(path.join(build, 'bars.js'));
const { saveBacktest } = require(path.join(build, 'backtests.js'));

function bars(count, base) {
  const days = new Int32Array(count);
  const close = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    days[i] = 10_959 + i;
    close[i] = base + i / 100;
  }
  return { count, days, open: close, high: close, low: close, close, volume: close };
}

async function main(job) {
  const keyring = await Keyring.open(path.join(job.profileDir, 'keyring.bin'), job.password, { allowWeakKdfForTests: true });
  const store = await SealedStore.open({
    durableDir: path.join(job.profileDir, 'store'),
    ramDir: job.ramDir,
    keyring,
    log: pino({ level: 'silent' }),
    securityEvent: (event) => process.stdout.write(`event ${event.type}\n`),
    compactAfterBytes: job.compactAfterBytes,
  });
  process.stdout.write('ready\n');

  if (job.rekey) {
    for (;;) process.stdout.write(`rekeyed ${await store.rekey()}\n`);
  }
  for (let i = 0; ; i++) {
    const marker = job.round * 1_000 + i;
    if (i % 3 === 0) {
      const symbol = `R${job.round}N${i}`;
      const count = 2_000 + (marker % 7) * 1_000;
      await replaceBars(store.database, symbol, bars(count, marker));
      process.stdout.write(`acked import ${symbol} ${count}\n`);
    } else {
      const equity = new Float64Array(500).fill(marker);
      const { id } = await saveBacktest(store.database, {
        strategyFile: `s${marker}.js`, strategySha256: 'b'.repeat(64), symbol: 'X', params: { marker }, options: {}, metrics: { marker },
        fills: [{ bar: 0, time: 0, side: 'buy', qty: 1, price: marker, commission: 0 }], equity, time: new Float64Array(500),
      });
      process.stdout.write(`acked backtest ${id} ${marker}\n`);
    }
  }
}

let input = '';
process.stdin.on('data', (chunk) => (input += chunk));
process.stdin.on('end', () => {
  main(JSON.parse(input)).catch((error) => {
    process.stderr.write(`${error.code ?? ''} ${error.message}\n`);
    process.exit(1);
  });
});
