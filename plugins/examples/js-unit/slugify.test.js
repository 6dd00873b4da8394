import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';
import { UnitError } from 'kaizen-sdk';
import * as testing from 'kaizen-sdk/testing';
import { slugify } from './slugify.js';

beforeEach(() => testing.reset());

test('slugs titles, within max_length', () => {
  assert.equal(testing.text(testing.invoke(slugify, '{"title": "Crème Brûlée: 10 Recipes!"}')), '{"slug":"creme-brulee-10-recipes"}');
  testing.configure({ max_length: 5 });
  assert.equal(testing.text(testing.invoke(slugify, '{"title": "Hello, World"}')), '{"slug":"hello"}');
});

test('refuses what is not a title; fails on a title without letters', () => {
  const fails = (request, errorClass) =>
    assert.throws(() => testing.invoke(slugify, request), (e) => e instanceof UnitError && e.errorClass === errorClass);
  fails('not json', 'invalid-input');
  fails('{"title": 7}', 'invalid-input');
  fails('{"title": "!!!"}', 'internal');
});
