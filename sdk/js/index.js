// Kaizen plugins in JavaScript, for jco's QuickJS backend and for Node
// (the native tests). See docs/sdk-js.md in the Kaizen repository.
//
//   import { Unit, UnitError, payload } from 'kaizen-sdk';
//   export const greeter = new Unit({
//     name: 'greeter', version: '0.1.0', description: 'Greets by name',
//     handle(context, request) {
//       const { value, encoding } = payload.decode(request);
//       if (typeof value?.name !== 'string') throw new UnitError('invalid-input', 'missing "name"');
//       return payload.encode({ greeting: `Hello, ${value.name}!` }, encoding);
//     },
//   });
//
// The component's entry module imports `kaizen-sdk/component` (the host's
// imports and a `console`) and exports the unit's `describe` and `invoke`.

export * as config from './src/config.js';
export { console, format } from './src/console.js';
export { UnitError } from './src/errors.js';
export { inComponent } from './src/host.js';
export * as log from './src/log.js';
export * as payload from './src/payload.js';
export * as utf8 from './src/utf8.js';
export { Detector, Improver, Recovery, Unit } from './src/worlds.js';
