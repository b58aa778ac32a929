// Original file: proto/decant/v1/store.proto

import type { Item as _decant_v1_Item, Item__Output as _decant_v1_Item__Output } from '../../decant/v1/Item.js';

export interface ScanResponse {
  'items'?: (_decant_v1_Item)[];
  'next_page_token'?: (string);
}

export interface ScanResponse__Output {
  'items': (_decant_v1_Item__Output)[];
  'next_page_token': (string);
}
