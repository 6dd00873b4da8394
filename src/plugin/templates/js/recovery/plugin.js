// The component's entry: the SDK's host connection first, then the world's exports.
import 'kaizen-sdk/component';
import { patientRetry } from './logic.js';

export const describe = () => patientRetry.describe();
export const handles = () => patientRetry.handles();
export const decide = (failure) => patientRetry.decide(failure);
