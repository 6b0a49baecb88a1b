// Channel: Go's bounded channel. A fast producer waits for a slow consumer instead of buffering.
import { Channel } from 'sluice';

export async function main(): Promise<{ received: number; maxBuffered: number }> {
  const ch = new Channel<number>(4);
  let maxBuffered = 0;
  const producer = (async () => {
    for (let i = 0; i < 50; i++) {
      await ch.send(i); // waits while 4 values are buffered
      maxBuffered = Math.max(maxBuffered, ch.length);
    }
    ch.close();
  })();
  let received = 0;
  for await (const _ of ch) {
    received++;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await producer;
  return { received, maxBuffered };
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(await main());
