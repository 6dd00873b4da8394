// Kaizen unit in JavaScript: slugify. Request `{"title": "Hello, World!"}`,
// answer `{"slug": "hello-world"}`. A request that is not JSON, or has no
// string `title`, is refused with the `invalid-input` error class; a title
// that slugifies to nothing with `internal` (a typed error the caller and the
// recovery strategies can tell apart).

import { config } from 'kaizen:plugin/host@0.1.0';

const maxLength = () => Number(config('max_length') ?? 60);

// The QuickJS engine has no TextEncoder / TextDecoder: UTF-8 through the
// URI escapes it does have.
const utf8Decode = (bytes) => decodeURIComponent(escape(String.fromCharCode(...bytes)));
const utf8Encode = (text) => Uint8Array.from(unescape(encodeURIComponent(text)), (c) => c.charCodeAt(0));

function refuse(tag, message) {
  // jco maps a thrown value to the `err` case of the result.
  throw { errorClass: { tag }, message };
}

export function describe() {
  return { name: 'slugify', kind: 'unit', version: '1.0.0', description: 'Titles to URL slugs (JavaScript)' };
}

export function invoke(context, request) {
  let req;
  try {
    req = JSON.parse(utf8Decode(request));
  } catch (e) {
    refuse('invalid-input', `request is not JSON: ${e.message}`);
  }
  if (typeof req?.title !== 'string') refuse('invalid-input', 'missing string "title"');
  const slug = req.title
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, maxLength());
  if (slug === '') refuse('internal', 'the title has no letters or digits to make a slug from');
  return utf8Encode(JSON.stringify({ slug }));
}
