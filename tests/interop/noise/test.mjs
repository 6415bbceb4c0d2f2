// SPDX-License-Identifier: MIT
//
// Live Noise interop: twofold's C handshake (noise_peer, built on
// proto/noise.h) against an independent implementation, npm noise-c.wasm
// (rweather/noise-c compiled to WebAssembly), over pipes.
//
// Usage: node test.mjs NOISE_PEER_BINARY
// Run from a directory whose node_modules holds noise-c.wasm
// (run-noise-interop.sh sets that up).  Exit: 0 all passed, 1 otherwise.
//
// The conversation is the one described at the top of noise_peer.c: frames are
// a 16-bit big-endian length then the bytes; handshake payloads "" /
// "<impl>-resp" / "<impl>-init"; then ROUNDS transport round trips where the
// initiator sends "ping <i> from <impl>" and the responder answers "echo:" +
// what it received.  <impl> is "c" / "C" for noise_peer and "js" / "JS" here.
// Both sides check everything they receive, so each direction uses, and
// verifies, one cipher state of each side.  Both sides must also agree on the
// static keys each learned and on the handshake hash.
//
// Negative cases, in both roles: a JS side with another prologue fails the
// handshake on both sides; a tampered transport message, and a well-encrypted
// but unexpected plaintext, make noise_peer exit 1.

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const createNoise = require('noise-c.wasm');

const PROTOCOL = 'Noise_XX_25519_ChaChaPoly_SHA256';
const PROLOGUE = 'twofold/v1/noise';
const ROUNDS = 3; // must match noise_peer.c
const CASE_TIMEOUT_MS = 15000;

const enc = new TextEncoder();
const dec = new TextDecoder();
const hex = (u8) => Buffer.from(u8).toString('hex');

if (process.argv.length !== 3) {
    console.error('usage: node test.mjs NOISE_PEER_BINARY');
    process.exit(2);
}
const peerBinary = process.argv[2];

// Reads length-prefixed frames from a stream; read() resolves to null at EOF.
class FrameReader {
    constructor(stream) {
        this.buf = Buffer.alloc(0);
        this.ended = false;
        this.waiter = null;
        stream.on('data', (d) => {
            this.buf = Buffer.concat([this.buf, d]);
            this.wake();
        });
        stream.on('end', () => {
            this.ended = true;
            this.wake();
        });
        stream.on('error', () => {
            this.ended = true;
            this.wake();
        });
    }

    wake() {
        const w = this.waiter;
        this.waiter = null;
        if (w) w();
    }

    async read() {
        for (;;) {
            if (this.buf.length >= 2) {
                const n = this.buf.readUInt16BE(0);
                if (this.buf.length >= 2 + n) {
                    const frame = Uint8Array.from(this.buf.subarray(2, 2 + n));
                    this.buf = this.buf.subarray(2 + n);
                    return frame;
                }
            }
            if (this.ended) return null;
            await new Promise((resolve) => {
                this.waiter = resolve;
            });
        }
    }
}

function equalBytes(a, b) {
    return a.length === b.length && a.every((x, i) => x === b[i]);
}

function expectText(what, got, want) {
    const text = dec.decode(got);
    if (text !== want) {
        throw new Error(`${what}: got ${JSON.stringify(text)}, want ${JSON.stringify(want)}`);
    }
}

// Runs one session: noise_peer in cRole, noise-c.wasm in the other role.
// opts.prologue: what the JS side uses (noise_peer always uses PROLOGUE).
// opts.tamper: flip a bit in the first transport message JS sends.
// opts.wrongText: send a different first transport plaintext (well encrypted).
// Resolves to { jsError, code, signal, stderr, js } and never rejects for a
// protocol failure: the caller decides what was expected.
async function session(noise, cRole, opts) {
    const c = noise.constants;
    const jsInitiator = cRole === 'responder';
    const child = spawn(peerBinary, [cRole, hex(enc.encode(PROLOGUE))], {
        stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => {
        stderr += d;
    });
    child.stdin.on('error', () => {}); // EPIPE once the peer has quit: seen as EOF on read
    const exited = new Promise((resolve) => {
        child.on('error', (e) => resolve({ code: null, signal: null, spawnError: e }));
        child.on('close', (code, signal) => resolve({ code, signal }));
    });
    const reader = new FrameReader(child.stdout);
    const send = (msg) => {
        const hdr = Buffer.alloc(2);
        hdr.writeUInt16BE(msg.length);
        child.stdin.write(Buffer.concat([hdr, Buffer.from(msg)]));
    };
    const recv = async (what) => {
        const frame = await reader.read();
        if (frame === null) throw new Error(`noise_peer closed its output before ${what}`);
        return frame;
    };

    const js = {};
    const run = async () => {
        const [priv, pub] = noise.CreateKeyPair(c.NOISE_DH_CURVE25519);
        js.localStatic = hex(pub);
        const hs = noise.HandshakeState(
            PROTOCOL,
            jsInitiator ? c.NOISE_ROLE_INITIATOR : c.NOISE_ROLE_RESPONDER,
        );
        hs.Initialize(enc.encode(opts.prologue), priv, null, null);
        // Payload of message i, sent by the initiator for even i.
        const payload = (i, mine) =>
            ['', mine ? 'js-resp' : 'c-resp', mine ? 'js-init' : 'c-init'][i];
        let i = 0;
        for (;;) {
            const action = hs.GetAction();
            if (action === c.NOISE_ACTION_WRITE_MESSAGE) {
                const p = payload(i, true);
                send(hs.WriteMessage(p === '' ? null : enc.encode(p)));
                i++;
            } else if (action === c.NOISE_ACTION_READ_MESSAGE) {
                const msg = await recv(`handshake message ${i + 1}`);
                // Throws (and frees hs) on a MAC failure.
                expectText(
                    `handshake payload ${i + 1}`,
                    hs.ReadMessage(msg, true),
                    payload(i, false),
                );
                i++;
            } else if (action === c.NOISE_ACTION_SPLIT) {
                break;
            } else {
                throw new Error(`unexpected handshake action ${action} after ${i} messages`);
            }
        }
        if (i !== 3) throw new Error(`handshake split after ${i} messages, want 3`);
        const rs = hs.GetRemotePublicKey();
        if (rs === null) throw new Error('noise-c.wasm learned no remote static key');
        js.remoteStatic = hex(rs);
        js.hash = hex(hs.GetHandshakeHash());
        const [tx, rx] = hs.Split(); // frees hs
        const ad = new Uint8Array(0);
        let tampered = false;
        let altered = false;
        const sendText = (text) => {
            if (opts.wrongText && !altered) {
                text = text.replace(/:|JS/, (m) => (m === ':' ? ';' : 'jS'));
                altered = true;
            }
            const ct = tx.EncryptWithAd(ad, enc.encode(text));
            if (opts.tamper && !tampered) {
                ct[0] ^= 0x01;
                tampered = true;
            }
            send(ct);
        };
        try {
            for (let r = 1; r <= ROUNDS; r++) {
                if (jsInitiator) {
                    const ping = `ping ${r} from JS`;
                    sendText(ping);
                    const ct = await recv(`transport echo ${r}`);
                    expectText(`transport echo ${r}`, rx.DecryptWithAd(ad, ct), `echo:${ping}`);
                } else {
                    const ping = `ping ${r} from C`;
                    const ct = await recv(`transport ping ${r}`);
                    const pt = rx.DecryptWithAd(ad, ct);
                    expectText(`transport ping ${r}`, pt, ping);
                    sendText(`echo:${dec.decode(pt)}`);
                }
            }
        } finally {
            tx.free();
            rx.free();
        }
    };

    let jsError = null;
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(
            () => reject(new Error(`timed out after ${CASE_TIMEOUT_MS} ms`)),
            CASE_TIMEOUT_MS,
        );
    });
    try {
        await Promise.race([run(), timeout]);
    } catch (e) {
        jsError = e;
    }
    child.stdin.end();
    let status;
    try {
        status = await Promise.race([exited, timeout]);
    } catch (e) {
        child.kill('SIGKILL');
        status = await exited;
        jsError = jsError ?? e;
    }
    clearTimeout(timer);
    if (status.spawnError) {
        throw new Error(`cannot run ${peerBinary}: ${status.spawnError.message}`);
    }
    const field = (name) => {
        const m = stderr.match(new RegExp(`^noise_peer: ${name}=([0-9a-f]{64})$`, 'm'));
        return m ? m[1] : null;
    };
    return {
        jsError,
        code: status.code,
        signal: status.signal,
        stderr,
        js,
        c: {
            localStatic: field('local_static'),
            remoteStatic: field('remote_static'),
            hash: field('handshake_hash'),
        },
    };
}

const cStatus = (r) => (r.signal ? `killed by ${r.signal}` : `exit ${r.code}`);
const cTail = (r) => r.stderr.trim().split('\n').slice(-2).join(' | ');

// Both implementations complete the handshake and the round trips, and agree
// on both static keys and the handshake hash.
async function positive(noise, cRole) {
    const r = await session(noise, cRole, { prologue: PROLOGUE, tamper: false });
    const problems = [];
    if (r.jsError) problems.push(`JS side: ${r.jsError.message}`);
    if (r.code !== 0) problems.push(`noise_peer ${cStatus(r)}: ${cTail(r)}`);
    if (!r.jsError && r.code === 0) {
        if (r.c.localStatic === null || r.c.remoteStatic === null || r.c.hash === null) {
            problems.push('noise_peer did not print its keys and handshake hash');
        } else {
            if (r.c.remoteStatic !== r.js.localStatic) {
                problems.push(`C learned static ${r.c.remoteStatic}, JS has ${r.js.localStatic}`);
            }
            if (r.js.remoteStatic !== r.c.localStatic) {
                problems.push(`JS learned static ${r.js.remoteStatic}, C has ${r.c.localStatic}`);
            }
            if (r.js.hash !== r.c.hash) {
                problems.push(`handshake hash C ${r.c.hash} != JS ${r.js.hash}`);
            }
        }
    }
    return problems;
}

// A JS side with another prologue: the handshake must fail on both sides.
// The first MAC is in message 2, so whoever reads message 2 (the initiator)
// reports the failure and the other side sees the stream end.
async function wrongPrologue(noise, cRole) {
    const r = await session(noise, cRole, { prologue: 'twofold/v2/noise', tamper: false });
    const problems = [];
    if (r.code !== 1) problems.push(`noise_peer ${cStatus(r)}, want exit 1`);
    if (r.c.hash !== null) problems.push('noise_peer completed the handshake');
    if (r.js.hash !== undefined || r.jsError === null) {
        problems.push('noise-c.wasm completed the handshake');
    }
    if (cRole === 'initiator' && !/handshake read: E_DECRYPT/.test(r.stderr)) {
        problems.push(`noise_peer did not report E_DECRYPT: ${cTail(r)}`);
    }
    if (cRole === 'responder' && !/NOISE_ERROR_MAC_FAILURE/.test(String(r.jsError?.message))) {
        problems.push(`noise-c.wasm did not report a MAC failure: ${r.jsError?.message}`);
    }
    return problems;
}

// JS flips one bit of its first transport message: noise_peer must reject it.
async function tamperedTransport(noise, cRole) {
    const r = await session(noise, cRole, { prologue: PROLOGUE, tamper: true });
    const problems = [];
    if (r.js.hash === undefined || r.c.hash === null) problems.push('handshake did not complete');
    if (r.code !== 1) problems.push(`noise_peer ${cStatus(r)}, want exit 1`);
    if (!/transport decrypt: E_DECRYPT/.test(r.stderr)) {
        problems.push(`noise_peer did not report E_DECRYPT: ${cTail(r)}`);
    }
    if (r.jsError === null) {
        problems.push('JS side finished the round trips with a tampered message');
    }
    return problems;
}

// JS sends a first transport message that decrypts but is not the agreed
// text: noise_peer must notice (it checks every plaintext it receives).
async function wrongPlaintext(noise, cRole) {
    const r = await session(noise, cRole, { prologue: PROLOGUE, wrongText: true });
    const problems = [];
    if (r.code !== 1) problems.push(`noise_peer ${cStatus(r)}, want exit 1`);
    if (!/transport plaintext: got/.test(r.stderr)) {
        problems.push(`noise_peer did not report the wrong plaintext: ${cTail(r)}`);
    }
    return problems;
}

async function main() {
    const wasmPath = require.resolve('noise-c.wasm/src/noise-c.wasm');
    const noise = await new Promise((resolve) =>
        createNoise({ wasmBinary: readFileSync(wasmPath) }, resolve),
    );
    const version = require('noise-c.wasm/package.json').version;
    console.log(`noise-c.wasm ${version} vs ${peerBinary}`);

    const cases = [];
    for (const cRole of ['initiator', 'responder']) {
        const jsRole = cRole === 'initiator' ? 'responder' : 'initiator';
        const who = `C ${cRole} / noise-c.wasm ${jsRole}`;
        cases.push([
            `${who}: handshake, static keys, hash, ${ROUNDS} round trips`,
            () => positive(noise, cRole),
        ]);
        cases.push([
            `${who}: different prologue fails on both sides`,
            () => wrongPrologue(noise, cRole),
        ]);
        cases.push([
            `${who}: tampered transport message rejected by C`,
            () => tamperedTransport(noise, cRole),
        ]);
        cases.push([
            `${who}: unexpected plaintext rejected by C`,
            () => wrongPlaintext(noise, cRole),
        ]);
    }
    let passed = 0;
    let failed = 0;
    for (const [name, fn] of cases) {
        let problems;
        try {
            problems = await fn();
        } catch (e) {
            problems = [e.message];
        }
        if (problems.length === 0) {
            passed++;
            console.log(`ok   ${name}`);
        } else {
            failed++;
            console.log(`FAIL ${name}`);
            for (const p of problems) console.log(`     ${p}`);
        }
    }
    console.log(`${passed} passed, ${failed} failed`);
    return failed === 0 && passed > 0 ? 0 : 1;
}

process.exitCode = await main();
