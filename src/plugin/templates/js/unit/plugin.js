// The component's entry: the SDK's host connection first, then the world's exports.
import 'kaizen-sdk/component';
import { greeter } from './logic.js';

export const describe = () => greeter.describe();
export const invoke = (context, request) => greeter.invoke(context, request);
