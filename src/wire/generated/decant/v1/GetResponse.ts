// Original file: proto/decant/v1/store.proto

import type { Item as _decant_v1_Item, Item__Output as _decant_v1_Item__Output } from '../../decant/v1/Item.js';

export interface GetResponse {
  'found'?: (boolean);
  'item'?: (_decant_v1_Item | null);
}

export interface GetResponse__Output {
  'found': (boolean);
  'item': (_decant_v1_Item__Output | null);
}
