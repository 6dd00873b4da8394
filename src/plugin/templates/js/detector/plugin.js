// The component's entry: the SDK's host connection first, then the world's exports.
import 'kaizen-sdk/component';
import { slowP95 } from './logic.js';

export const describe = () => slowP95.describe();
export const detect = (input) => slowP95.detect(input);
