// A strict reader of the Prometheus text exposition format (version 0.0.4), for tests that scrape
// /metrics: every line must be a HELP, a TYPE, a sample or empty; every sample must belong to a
// family whose HELP and TYPE came before it; label values are unescaped.
const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const VALUE = '[-+]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][-+]?\\d+)?|NaN|[-+]Inf';
const HELP = new RegExp(`^# HELP (${NAME}) (.*)$`);
const TYPE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
const SAMPLE = new RegExp(`^(${NAME})(\\{(?:${LABEL}(?:,${LABEL})*)?,?\\})? (${VALUE})(?: -?\\d+)?$`);

export interface PromSample { name: string; labels: Record<string, string>; value: number }
export interface PromText { families: Map<string, { help?: string; type?: string }>; samples: PromSample[] }

export function parsePromText(text: string): PromText {
  const families = new Map<string, { help?: string; type?: string }>();
  const samples: PromSample[] = [];
  const fam = (n: string) => { let f = families.get(n); if (!f) families.set(n, f = {}); return f; };
  text.split('\n').forEach((line, i) => {
    const where = `line ${i + 1}: ${JSON.stringify(line)}`;
    if (line === '') return;
    let m: RegExpExecArray | null;
    if ((m = HELP.exec(line))) { const f = fam(m[1]); if (f.help !== undefined) throw new Error(`${where}: a second HELP`); f.help = m[2]; return; }
    if ((m = TYPE.exec(line))) { const f = fam(m[1]); if (f.type !== undefined) throw new Error(`${where}: a second TYPE`); f.type = m[2]; return; }
    if (line.startsWith('#')) throw new Error(`${where}: a comment that is neither HELP nor TYPE`);
    if (!(m = SAMPLE.exec(line))) throw new Error(`${where}: not a sample`);
    const name = m[1];
    const base = [name, name.replace(/_(bucket|sum|count)$/, '')].find((n) => families.get(n)?.type);
    const f = base && families.get(base);
    if (!f || f.help === undefined) throw new Error(`${where}: sample of a family without HELP and TYPE before it`);
    if (base !== name && f.type !== 'histogram' && f.type !== 'summary') throw new Error(`${where}: _bucket/_sum/_count of a ${f.type}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').slice(1, -1).matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    const v = m[3];
    samples.push({ name, labels, value: v === 'NaN' ? NaN : v.endsWith('Inf') ? (v.startsWith('-') ? -Infinity : Infinity) : Number(v) });
  });
  return { families, samples };
}

/** The value of the one sample called `name` whose labels include `labels`; throws if there is
 *  not exactly one. */
export function promValue(p: PromText, name: string, labels: Record<string, string> = {}): number {
  const hits = p.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (hits.length !== 1) throw new Error(`${hits.length} samples ${name}${JSON.stringify(labels)}`);
  return hits[0].value;
}
