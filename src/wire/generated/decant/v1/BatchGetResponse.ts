// Original file: proto/decant/v1/store.proto

import type { Item as _decant_v1_Item, Item__Output as _decant_v1_Item__Output } from '../../decant/v1/Item.js';

export interface BatchGetResponse {
  'items'?: (_decant_v1_Item)[];
}

export interface BatchGetResponse__Output {
  'items': (_decant_v1_Item__Output)[];
}
