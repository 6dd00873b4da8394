// Kaizen unit in JavaScript, on the JavaScript SDK (`sdk/js`): slugify.
// Request `{"title": "Hello, World!"}` (JSON or MessagePack), answer
// `{"slug": "hello-world"}` in the same encoding. A request that is not
// JSON or MessagePack, or has no string `title`, is refused with the
// `invalid-input` error class; a title that slugifies to nothing fails with
// `internal` (a typed error the caller and the recovery strategies can tell
// apart).
import { Unit, UnitError, config, payload } from 'kaizen-sdk';

export const slugify = new Unit({
  name: 'slugify',
  version: '1.0.0',
  description: 'Titles to URL slugs (JavaScript)',
  handle(context, request) {
    const { value, encoding } = payload.decode(request);
    if (typeof value?.title !== 'string') throw new UnitError('invalid-input', 'missing string "title"');
    const slug = value.title
      .normalize('NFKD')
      .replace(/[\u0300-\u036f]/g, '')
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, config.int('max_length', 60));
    if (slug === '') throw new UnitError('internal', 'the title has no letters or digits to make a slug from');
    return payload.encode({ slug }, encoding);
  },
});
