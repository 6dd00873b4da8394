// Greets by name; throws `{errorClass, message}` (the result's err case).
export function greet(text) {
  let req;
  try {
    req = JSON.parse(text);
  } catch (e) {
    throw { errorClass: { tag: 'invalid-input' }, message: `request is not JSON: ${e.message}` };
  }
  if (typeof req?.name !== 'string') throw { errorClass: { tag: 'invalid-input' }, message: 'missing "name"' };
  return JSON.stringify({ greeting: `Hello, ${req.name}!` });
}
