// Unit __NAME__: greets by name. Request `{"name": "Ada"}` (JSON or
// MessagePack), answer `{"greeting": "Hello, Ada!"}` in the same encoding.
// A request without a name is refused with the `invalid-input` class: throw
// `new UnitError(class, message)` for a typed error; any other exception
// answers `internal` with its message, its stack in the host's log.
import { Unit, UnitError, config, log, payload } from 'kaizen-sdk';

export const greeter = new Unit({
  name: '__NAME__',
  version: '0.1.0',
  description: 'Greets by name',
  handle(context, request) {
    const { value, encoding } = payload.decode(request); // nesting past payload_max_depth: invalid-input
    if (typeof value?.name !== 'string') throw new UnitError('invalid-input', 'expected {"name": "..."}');
    log.debug('greeting', { name: value.name, attempt: context.attempt });
    return payload.encode({ greeting: `${config.get('greeting', 'Hello')}, ${value.name}!` }, encoding);
  },
});
