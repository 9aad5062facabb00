/**
 * Keys refused anywhere in client JSON: `__proto__`, and `constructor` holding `prototype` — the
 * rule of secure-json-parse, which the HTTP parser applies. `JSON.parse` keeps such a key as a
 * plain property, but any code that later copies the object with assignment (a processor's
 * `Object.assign`, a deep merge) would set a prototype from it. HTTP and WebSocket refuse the
 * same keys, naming where they are.
 */

/** Cheap pre-check on the text: only JSON that could hold such a key is walked. */
export function mayHoldForbiddenKey(text: string): boolean {
  return text.includes('proto') || text.includes('constructor') || text.includes('\\u');
}

/** The path of the first forbidden key in `value` (e.g. `body.payload.__proto__`), or null. */
export function forbiddenKeyPath(value: unknown, root: string): string | null {
  // An explicit stack: a frame may nest thousands of levels deep.
  const stack: [unknown, string][] = [[value, root]];
  while (stack.length > 0) {
    const [node, path] = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    if (Array.isArray(node)) {
      for (let i = node.length - 1; i >= 0; i--) stack.push([node[i], `${path}.${i}`]);
      continue;
    }
    const obj = node as Record<string, unknown>;
    if (Object.hasOwn(obj, '__proto__')) return `${path}.__proto__`;
    const ctor = Object.hasOwn(obj, 'constructor') ? obj.constructor : undefined;
    if (ctor !== null && typeof ctor === 'object' && Object.hasOwn(ctor, 'prototype')) return `${path}.constructor.prototype`;
    const keys = Object.keys(obj);
    for (let i = keys.length - 1; i >= 0; i--) stack.push([obj[keys[i]!], `${path}.${keys[i]}`]);
  }
  return null;
}

export function forbiddenKeyMessage(path: string): string {
  return `${path} is not accepted: keys named __proto__, or constructor holding prototype, are refused`;
}
