import { after } from 'node:test';
import { FsSegmentStore } from '../../cloud/adapters/fs/segment-store.ts';
import { cleanup, tmpDir } from '../helpers.ts';
import { segmentStoreContract } from './segment-store.contract.ts';

after(cleanup);
segmentStoreContract('fs segment store', async () => {
  const dir = tmpDir('segs');
  return { store: new FsSegmentStore(dir), reopen: async () => new FsSegmentStore(dir) };
});
