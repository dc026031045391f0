// DPoP proofs made by an independent client implementation (panva's `dpop`), for
// crates/token-axum/tests/interop.rs. Run as `node proofs.mjs ALG` (ES256 or
// Ed25519): generates one key pair, then reads one JSON request a line on stdin —
// {"htm": …, "htu": …, "accessToken"?: …, "nonce"?: …} — and writes one proof a line
// on stdout.
import * as DPoP from 'dpop';
import { createInterface } from 'node:readline';

const alg = process.argv[2] ?? 'ES256';
const keypair = await DPoP.generateKeyPair(alg);
const lines = createInterface({ input: process.stdin, terminal: false });
for await (const line of lines) {
  if (line.trim() === '') continue;
  const r = JSON.parse(line);
  const proof = await DPoP.generateProof(keypair, r.htu, r.htm, r.nonce, r.accessToken);
  process.stdout.write(proof + '\n');
}
