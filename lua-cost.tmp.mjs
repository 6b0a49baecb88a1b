import { createClient } from 'redis';
const c = createClient({ url: 'redis://127.0.0.1:6379', RESP: 2 });
await c.connect();
const FAST = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now - tonumber(ARGV[2]) < tonumber(ARGV[3]) then
  return redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 4))
end
return -1
`;
const sha = await c.sendCommand(['SCRIPT', 'LOAD', FAST]);
const stream = 'h-redis:luacost:' + process.pid;
await c.sendCommand(['DEL', stream]);
await c.sendCommand(['XGROUP', 'CREATE', stream, 'g', '0', 'MKSTREAM']);
const N = 64 * 300;
for (let i = 0; i < N; i += 500) { const m = c.multi(); for (let j = 0; j < 500; j++) m.addCommand(['XADD', stream, '*', 'body', '{"i":1}']); await m.exec(); }
// use a private connection's commandstats? INFO commandstats is server-wide; take deltas and hope others are idle-ish
async function stats() { const s = String(await c.sendCommand(['INFO', 'commandstats'])); const o = {}; for (const l of s.split('\n')) { const m = /cmdstat_(\w+):calls=(\d+),usec=(\d+)/.exec(l); if (m) o[m[1]] = [Number(m[2]), Number(m[3])]; } return o; }
const T = Math.floor(Date.now());
for (const mode of ['xack', 'lua', 'xack', 'lua']) {
  const s0 = await stats();
  for (let b = 0; b < 150; b++) {
    const r = await c.sendCommand(['XREADGROUP', 'GROUP', 'g', 'a', 'COUNT', '64', 'STREAMS', stream, '>']);
    let ids = r?.[0]?.[1]?.map((e) => e[0]) ?? [];
    if (ids.length === 0) { await c.sendCommand(['XGROUP', 'SETID', stream, 'g', '0']); const r2 = await c.sendCommand(['XREADGROUP', 'GROUP', 'g', 'a', 'COUNT', '64', 'STREAMS', stream, '0']); ids = r2[0][1].map((e)=>e[0]); }
    if (mode === 'xack') await c.sendCommand(['XACK', stream, 'g', ...ids]);
    else { const x = await c.sendCommand(['EVALSHA', sha, '1', stream, 'g', String(Date.now()), '30000', ...ids]); if (x === -1) throw new Error('slow'); }
  }
  const s1 = await stats();
  for (const k of ['xack', 'evalsha', 'xreadgroup']) if (s1[k]) { const dc = s1[k][0] - (s0[k]?.[0] ?? 0), du = s1[k][1] - (s0[k]?.[1] ?? 0); if (dc) console.log(mode, k, dc, (du / dc).toFixed(1), 'us/call'); }
}
await c.sendCommand(['DEL', stream]);
await c.close();
