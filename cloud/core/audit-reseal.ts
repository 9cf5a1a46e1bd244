// `cloudcons audit reseal NAME`: the admin's way past a head that no longer proves the records
// (lost, unreadable, restored from a backup, records cut off or added). The head moves to the last
// intact record and the chain itself gets an `audit.reseal` record that says from where to where,
// who, and what the head can no longer tell, so the break stays on the record. Refused where a
// reseal would hide evidence: broken records, and an end that is not what the head proves (a
// replaced last record would be adopted as if it were the original).
import { Conflict } from '../../protocol/errors.ts';
import type { AuditVerifyResult, HeadRead } from './audit-walker.ts';
import { iso, short } from './audit-walker.ts';
import type { AuditHead, AuditRecord } from './ports.ts';

/** What resealChain needs of a store. */
export interface ResealBackend {
  /** The head as stored (undefined: none; an UnreadableHead when it cannot be read). */
  head(): Promise<HeadRead>;
  /** The records walked and checked against `head` (the walk watches the head's seq). */
  walk(head: HeadRead): Promise<AuditVerifyResult>;
  /** Sets the head whatever it is now. */
  reset(to: AuditHead): Promise<void>;
  append(rec: AuditRecord): Promise<AuditRecord>;
}

/** Moves a console's head to its last intact record and chains an `audit.reseal` record that says
 *  so. Conflict when the records are broken, the end was replaced, or the head proves the end. */
export async function resealChain(b: ResealBackend, console: string, by: string, now: number): Promise<{ from?: AuditHead; to: AuditHead; record: AuditRecord }> {
  const head = await b.head();
  const v = await b.walk(head);
  const problem = v.broken?.problem;
  if (v.broken && problem !== 'head mismatch' && problem !== 'unreadable head') {
    throw new Conflict(`the audit records of ${console} are broken at seq ${v.broken.seq} (${problem}: ${v.broken.detail}): a reseal would hide that; keep the evidence (cloudcons audit verify ${console})`);
  }
  const end = v.end;
  if (!end) throw new Conflict(`${console} has no chained audit records: nothing to reseal to`);
  const from = head instanceof Error ? undefined : head;
  const cannotKnow = 'how many records were cut off the end, and whether the end was replaced, cannot be known';
  let what: string;
  switch (v.headState) {
    case 'replaced':
      throw new Conflict(`the end of the audit chain of ${console} is not what its head proves (${v.broken!.detail}): a reseal would adopt the replacement; keep the evidence (cloudcons audit verify ${console})`);
    case 'cut':
      what = `${from!.seq - end.seq} record(s) after it were missing; whether the records kept were rewritten too cannot be told from the head (compare a seal or archive kept elsewhere)`;
      break;
    case 'added':
      what = `seq ${from!.seq + 1}..${end.seq} lay beyond the head, which did not prove them (added outside cloudcons); they stay in the chain as found`;
      break;
    case 'missing':
      what = `no head was stored: ${cannotKnow}`;
      break;
    case 'unreadable':
      what = `${(head as Error).message}: ${cannotKnow}`;
      break;
    default:
      throw new Conflict(`the audit chain of ${console} ends where its head proves (seq ${end.seq})${v.note ? `; ${v.note}` : ''}: nothing to reseal`);
  }
  const was = head instanceof Error ? 'an unreadable head' : from ? `seq ${from.seq} (${short(from.hash)}, ${iso(from.time)})` : 'no head';
  await b.reset(end);
  const record = await b.append({ time: now, console, type: 'audit.reseal', user: by, detail: `head moved from ${was} to seq ${end.seq} (${short(end.hash)}), the last stored record; ${what}` });
  return { ...(from ? { from } : {}), to: end, record };
}
