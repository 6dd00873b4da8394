// The component's entry: the SDK's host connection first, then the unit
// world's exports.
import 'kaizen-sdk/component';
import { slugify } from './slugify.js';

export const describe = () => slugify.describe();
export const invoke = (context, request) => slugify.invoke(context, request);
