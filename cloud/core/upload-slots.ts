// Segment uploads in progress, bounded per relay and in total: each one may hold up to
// maxSegmentBytes of body in memory while it is verified, so their number is what bounds the
// memory uploads take (http-app.ts takes a slot before it reads a byte of the body).
import { RateLimited } from '../../protocol/errors.ts';

export class UploadSlots {
  private readonly byRelay = new Map<string, number>();
  private total = 0;
  constructor(private readonly perRelay: number, private readonly max: number) {}

  /** A slot for one upload of `relay`, or RateLimited naming the limit reached. Call the returned
   *  function once when the upload is done (stored, refused or abandoned). */
  take(relay: string): () => void {
    const mine = this.byRelay.get(relay) ?? 0;
    if (mine >= this.perRelay) throw new RateLimited(`relay ${relay} has ${mine} segment uploads in progress, its limit (maxUploadsPerRelay ${this.perRelay}): retry when one is done`);
    if (this.total >= this.max) throw new RateLimited(`${this.total} segment uploads are in progress, this cloud's limit (maxUploads ${this.max}): retry later`);
    this.byRelay.set(relay, mine + 1);
    this.total++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.total--;
      const n = (this.byRelay.get(relay) ?? 1) - 1;
      if (n > 0) this.byRelay.set(relay, n); else this.byRelay.delete(relay);
    };
  }
}
