/**
 * A tiny element builder: the console has no framework. Text goes in through textContent only,
 * never innerHTML, so nothing from an event payload can become markup.
 */
type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, ...children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
export function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, ...children);
  return el;
}

function setAttrs(el: Element, attrs: Attrs): void {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else if (k === 'class') el.setAttribute('class', String(v));
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

export function append(el: Node, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

export function clear(el: Node): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

/** Replaces an element's content; returns the element. */
export function render<T extends Node>(el: T, ...children: Child[]): T {
  clear(el);
  append(el, ...children);
  return el;
}

/** A polite live region message (screen readers) plus the visible status line. */
export function announce(region: HTMLElement, message: string): void {
  region.textContent = message;
}

export function statusBadge(status: string): HTMLSpanElement {
  return h('span', { class: `badge st-${status}`, 'data-status': status }, status);
}

export function field(label: string, input: HTMLElement, hint?: string): HTMLDivElement {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  if (hint) input.setAttribute('aria-describedby', `${id}-hint`);
  return h(
    'div',
    { class: 'field' },
    h('label', { for: id }, label),
    input,
    hint ? h('small', { class: 'hint', id: `${id}-hint` }, hint) : null,
  );
}

export function button(label: string, onClick: (ev: MouseEvent) => void, attrs: Attrs = {}): HTMLButtonElement {
  return h('button', { type: 'button', ...attrs, onclick: onClick as EventListener }, label);
}

/** Shows an error (or clears it) in a role=alert box. */
export function errorBox(): { el: HTMLDivElement; show(msg: string | null): void } {
  const el = h('div', { class: 'error', role: 'alert', hidden: true });
  return {
    el,
    show(msg) {
      el.textContent = msg ?? '';
      el.hidden = !msg;
    },
  };
}
