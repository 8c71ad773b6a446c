/**
 * A strict reader of the XML that qubesd writes (lxml's output: a declaration, elements,
 * attributes, text, comments). It reads nothing it was not written for: a DOCTYPE, and so
 * any entity definition, is refused, as is any reference but the five predefined entities
 * and character references, so a hostile file cannot expand, include or fetch anything.
 * Sizes and nesting are bounded. No dependency: what qubes.xml needs is this much.
 */
import { QvolError } from '../errors/index.js';

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** The element's own text, its children's left out, entities resolved. */
  text: string;
}

const MAX_DEPTH = 64;
const NAME = /[A-Za-z_][A-Za-z0-9_.:-]*/y;
const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

export class XmlError extends QvolError {
  constructor(file: string, message: string) {
    super('STATE_CORRUPT', `${file} is not XML qvol reads: ${message}.`, { path: file });
  }
}

/** Parses `text` (the whole of `file`, for messages) into its root element. */
export function parseXml(text: string, file: string): XmlElement {
  let pos = 0;
  const fail = (what: string): never => {
    const line = text.slice(0, pos).split('\n').length;
    throw new XmlError(file, `${what} (line ${line})`);
  };
  const name = (): string => {
    NAME.lastIndex = pos;
    const m = NAME.exec(text);
    if (!m) fail('a name was expected');
    pos += m![0].length;
    return m![0];
  };
  const skipSpace = () => {
    while (pos < text.length && ' \t\r\n'.includes(text[pos]!)) pos++;
  };
  const unescape = (raw: string): string => raw.replace(/&([^;&<]{0,16});|&/g, (whole, ref: string | undefined) => {
    if (ref === undefined) return fail('a bare & in text');
    if (Object.hasOwn(PREDEFINED, ref)) return PREDEFINED[ref]!;
    const code = /^#x[0-9a-fA-F]{1,6}$/.test(ref) ? parseInt(ref.slice(2), 16) : /^#[0-9]{1,7}$/.test(ref) ? parseInt(ref.slice(1), 10) : undefined;
    if (code === undefined) return fail(`the entity &${ref}; (only &lt; &gt; &amp; &quot; &apos; and character references are read)`);
    if (code === 0 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return fail(`the character reference ${whole}`);
    return String.fromCodePoint(code);
  });
  /** Comments and space; a DOCTYPE or anything else that starts with <! or <? is refused. */
  const skipMisc = () => {
    for (;;) {
      skipSpace();
      if (text.startsWith('<!--', pos)) {
        const end = text.indexOf('-->', pos + 4);
        if (end < 0) fail('a comment that does not end');
        pos = end + 3;
      } else if (text.startsWith('<!DOCTYPE', pos) || text.startsWith('<!ENTITY', pos)) {
        fail('a DOCTYPE (qubesd writes none; entities are not read)');
      } else if (text.startsWith('<?', pos) || text.startsWith('<!', pos)) {
        fail('a processing instruction or declaration qubesd does not write');
      } else {
        return;
      }
    }
  };
  const element = (depth: number): XmlElement => {
    if (depth > MAX_DEPTH) fail(`elements nested deeper than ${MAX_DEPTH}`);
    if (text[pos] !== '<') fail('an element was expected');
    pos++;
    const el: XmlElement = { name: name(), attrs: Object.create(null) as Record<string, string>, children: [], text: '' };
    for (;;) {
      skipSpace();
      if (text.startsWith('/>', pos)) {
        pos += 2;
        return el;
      }
      if (text[pos] === '>') {
        pos++;
        break;
      }
      const attr = name();
      skipSpace();
      if (text[pos] !== '=') fail(`attribute ${attr} has no value`);
      pos++;
      skipSpace();
      const quote = text[pos];
      if (quote !== '"' && quote !== "'") fail(`attribute ${attr}'s value is not quoted`);
      const end = text.indexOf(quote!, pos + 1);
      if (end < 0) fail(`attribute ${attr}'s value does not end`);
      const raw = text.slice(pos + 1, end);
      if (raw.includes('<')) fail(`a < in attribute ${attr}`);
      if (Object.hasOwn(el.attrs, attr)) fail(`attribute ${attr} given twice`);
      el.attrs[attr] = unescape(raw);
      pos = end + 1;
    }
    const texts: string[] = [];
    for (;;) {
      const lt = text.indexOf('<', pos);
      if (lt < 0) fail(`element ${el.name} does not end`);
      texts.push(unescape(text.slice(pos, lt)));
      pos = lt;
      if (text.startsWith('</', pos)) {
        pos += 2;
        const closing = name();
        if (closing !== el.name) fail(`</${closing}> closes <${el.name}>`);
        skipSpace();
        if (text[pos] !== '>') fail(`</${closing} does not end`);
        pos++;
        el.text = texts.join('');
        return el;
      }
      if (text.startsWith('<![CDATA[', pos)) {
        const end = text.indexOf(']]>', pos);
        if (end < 0) fail('a CDATA section that does not end');
        texts.push(text.slice(pos + 9, end));
        pos = end + 3;
      } else if (text.startsWith('<!--', pos)) {
        const end = text.indexOf('-->', pos + 4);
        if (end < 0) fail('a comment that does not end');
        pos = end + 3;
      } else if (text.startsWith('<!', pos) || text.startsWith('<?', pos)) {
        fail('a declaration or processing instruction inside an element');
      } else {
        el.children.push(element(depth + 1));
      }
    }
  };
  if (text.charCodeAt(0) === 0xfeff) pos = 1;
  if (text.startsWith('<?xml', pos)) {
    const end = text.indexOf('?>', pos);
    if (end < 0) fail('a declaration that does not end');
    if (/encoding\s*=\s*["'](?!utf-?8["'])/i.test(text.slice(pos, end))) fail('an encoding other than UTF-8');
    pos = end + 2;
  }
  skipMisc();
  const root = element(0);
  skipMisc();
  if (pos !== text.length) fail('text after the root element');
  return root;
}

/** The `name` children of `el`'s first `container` child; none when there is no such child. */
export function childrenIn(el: XmlElement, container: string, name: string): XmlElement[] {
  return el.children.find((c) => c.name === container)?.children.filter((c) => c.name === name) ?? [];
}
