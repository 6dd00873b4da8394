// Test unit on the JavaScript SDK: the request says how the call ends (see
// tests/guests/README.md). Imports the SDK of this checkout by path.
import '../../../sdk/js/component.js';
import { Unit, UnitError, log, payload } from '../../../sdk/js/index.js';

function turnTheGears(why) {
  jam(why);
}

function jam(why) {
  throw new RangeError(why);
}

const speaker = new Unit({
  name: 'speaker-js',
  version: '1.0.0',
  description: 'Ends each call as the request says (test guest)',
  handle(context, request) {
    const { value, encoding } = payload.decode(request);
    switch (value?.op) {
      case 'refuse':
        throw new UnitError('invalid-input', value.why);
      case 'crash':
        turnTheGears(value.why);
        break;
      case 'say':
        for (let i = 0; i < value.lines; i++) console.log(`speaker-js line ${String(i).padStart(6, '0')} `.padEnd(63, '.'));
        console.error(`speaker-js said ${value.lines} lines`);
        break;
      case 'log':
        log.info('order placed', { order: value.order, attempt: context.attempt });
        break;
    }
    return payload.encode(value, encoding);
  },
});

export const describe = () => speaker.describe();
export const invoke = (context, request) => speaker.invoke(context, request);
