// Import this first in a component's entry module: it connects the SDK to
// the host's imports and to the guest's stdout and stderr (WASI streams the
// host logs with the call's id), and installs a `console` (the QuickJS
// engine has none). Build against the SDK's WIT (`--wit
// node_modules/kaizen-sdk/wit`), whose worlds add the two streams to the
// contract's.

import { config, log } from 'kaizen:plugin/host@0.2.0';
import { getStderr } from 'wasi:cli/stderr@0.2.12';
import { getStdout } from 'wasi:cli/stdout@0.2.12';

import { console as sdkConsole } from './src/console.js';
import { connect } from './src/host.js';
import { encode } from './src/utf8.js';

// blocking-write-and-flush takes at most 4096 bytes at a time.
const writer = (stream) => (text) => {
  const bytes = encode(text);
  const out = stream();
  for (let at = 0; at < bytes.length; at += 4096) out.blockingWriteAndFlush(bytes.subarray(at, at + 4096));
};

connect({ config, log, stdout: writer(getStdout), stderr: writer(getStderr) });

if (typeof globalThis.console === 'undefined') globalThis.console = sdkConsole;
