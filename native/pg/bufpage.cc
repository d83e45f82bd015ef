// Mirrors REL_15_STABLE src/backend/storage/page/bufpage.c function by function; comments say
// where a check was added because PostgreSQL would otherwise touch memory outside the page.
#include "bufpage.h"

#include <cstring>
#include <string>

namespace strata {
namespace pg {
namespace {

// itemIdCompactData: one item with storage, for compactify_tuples.
struct ItemIdCompact {
  uint16_t offsetindex;  // line pointer array index (offnum - 1)
  int itemoff;           // page offset of the item data
  int alignedlen;        // MAXALIGN(item data length)
};

std::string U(unsigned v) { return std::to_string(v); }

// The "corrupted page pointers" test shared by the functions below; with `aligned`, pd_special
// must also be MAXALIGNed (PageAddItemExtended does not ask for that).
void CheckPagePointers(const uint8_t* page, bool aligned) {
  const unsigned lower = PageGetLower(page), upper = PageGetUpper(page), special = PageGetSpecial(page);
  if (lower < kSizeOfPageHeaderData || lower > upper || upper > special || special > kBlckSz ||
      (aligned && special != MaxAlign(special))) {
    ThrowPageError("corrupted page pointers: lower = " + U(lower) + ", upper = " + U(upper) + ", special = " +
                   U(special));
  }
}

// compactify_tuples: moves the items in `items` (nitems > 0) so they end at pd_special, in array
// order, and points their line pointers at the new places. `presorted` means descending itemoff:
// then tuples can be memmoved in place. Every item lies inside [pd_upper, pd_special) (callers check).
void CompactifyTuples(const ItemIdCompact* items, int nitems, uint8_t* page, bool presorted) {
  const int special = PageGetSpecial(page);
  int upper = special;
  int i = 0;
  const ItemIdCompact* it = &items[0];
  if (presorted) {
    // Items already at the end of the page stay where they are.
    do {
      it = &items[i];
      if (upper != it->itemoff + it->alignedlen) break;
      upper -= it->alignedlen;
      ++i;
    } while (i < nitems);
    int copy_tail = it->itemoff + it->alignedlen;
    int copy_head = copy_tail;
    for (; i < nitems; ++i) {
      it = &items[i];
      if (copy_head != it->itemoff + it->alignedlen) {
        std::memmove(page + upper, page + copy_head, static_cast<size_t>(copy_tail - copy_head));
        copy_tail = it->itemoff + it->alignedlen;
      }
      upper -= it->alignedlen;
      copy_head = it->itemoff;
      ItemIdSetOffset(page, it->offsetindex + 1, static_cast<uint32_t>(upper));
    }
    std::memmove(page + upper, page + copy_head, static_cast<size_t>(copy_tail - copy_head));
  } else {
    uint8_t scratch[kBlckSz];
    const int pd_upper = PageGetUpper(page);
    if (nitems < PageGetMaxOffsetNumber(page) / 4) {
      // Few items left: copy them one by one into the scratch page.
      do {
        it = &items[i];
        std::memcpy(scratch + it->itemoff, page + it->itemoff, static_cast<size_t>(it->alignedlen));
        ++i;
      } while (i < nitems);
      i = 0;
      it = &items[0];
      upper = special;
    } else {
      do {
        it = &items[i];
        if (upper != it->itemoff + it->alignedlen) break;
        upper -= it->alignedlen;
        ++i;
      } while (i < nitems);
      // Added check: PostgreSQL would copy scratch bytes it never filled if an item still to move
      // overlapped the ones left in place (only possible on a corrupt page).
      for (int k = i; k < nitems; ++k) {
        if (items[k].itemoff + items[k].alignedlen > upper) ThrowPageError("overlapping items on page");
      }
      std::memcpy(scratch + pd_upper, page + pd_upper, static_cast<size_t>(upper - pd_upper));
    }
    int copy_tail = it->itemoff + it->alignedlen;
    int copy_head = copy_tail;
    for (; i < nitems; ++i) {
      it = &items[i];
      if (copy_head != it->itemoff + it->alignedlen) {
        std::memcpy(page + upper, scratch + copy_head, static_cast<size_t>(copy_tail - copy_head));
        copy_tail = it->itemoff + it->alignedlen;
      }
      upper -= it->alignedlen;
      copy_head = it->itemoff;
      ItemIdSetOffset(page, it->offsetindex + 1, static_cast<uint32_t>(upper));
    }
    std::memcpy(page + upper, scratch + copy_head, static_cast<size_t>(copy_tail - copy_head));
  }
  PageSetUpper(page, static_cast<uint16_t>(upper));
}

// The line pointer test shared by the index functions: item inside [pd_upper, pd_special), aligned.
void CheckIndexItem(const uint8_t* page, int offnum, unsigned* offset, unsigned* size) {
  *size = ItemIdGetLength(page, offnum);
  *offset = ItemIdGetOffset(page, offnum);
  if (*offset < PageGetUpper(page) || *offset + *size > PageGetSpecial(page) || *offset != MaxAlign(*offset)) {
    ThrowPageError("corrupted line pointer: offset = " + U(*offset) + ", size = " + U(*size));
  }
}

void CheckIndexOffnum(const uint8_t* page, int offnum) {
  if (offnum <= 0 || offnum > PageGetMaxOffsetNumber(page)) {
    ThrowPageError("invalid index offnum: " + U(static_cast<unsigned>(offnum)));
  }
}

}  // namespace

void PageInit(uint8_t* page, size_t special_size) {
  special_size = MaxAlign(special_size);
  if (special_size + kSizeOfPageHeaderData >= kBlckSz) ThrowPageError("special space too large for PageInit");
  std::memset(page, 0, kBlckSz);
  PageSetLower(page, kSizeOfPageHeaderData);
  PageSetUpper(page, static_cast<uint16_t>(kBlckSz - special_size));
  StoreLe16(page + page_off::kSpecial, static_cast<uint16_t>(kBlckSz - special_size));
  StoreLe16(page + page_off::kPageSizeVersion, static_cast<uint16_t>(kBlckSz | kPgPageLayoutVersion));
}

uint16_t PageAddItemExtended(uint8_t* page, const uint8_t* item, size_t size, int offnum, int flags) {
  CheckPagePointers(page, false);
  const int limit = PageGetMaxOffsetNumber(page) + 1;
  bool needshuffle = false;
  // OffsetNumberIsValid: 1..MaxOffsetNumber; anything else asks for a free slot.
  if (offnum != kInvalidOffsetNumber && offnum <= kMaxOffsetNumber) {
    if ((flags & kPaiOverwrite) != 0) {
      if (offnum < limit && (ItemIdIsUsed(page, offnum) || ItemIdHasStorage(page, offnum))) {
        return kInvalidOffsetNumber;  // "will not overwrite a used ItemId"
      }
    } else if (offnum < limit) {
      needshuffle = true;
    }
  } else if (PageHasFreeLinePointers(page)) {
    // The first unused slot without storage; a wrong hint is reset.
    for (offnum = kFirstOffsetNumber; offnum < limit; ++offnum) {
      if (!ItemIdIsUsed(page, offnum) && !ItemIdHasStorage(page, offnum)) break;
    }
    if (offnum >= limit) PageClearHasFreeLinePointers(page);
  } else {
    offnum = limit;
  }
  if (offnum > limit) return kInvalidOffsetNumber;  // "specified item offset is too large"
  if ((flags & kPaiIsHeap) != 0 && offnum > kMaxHeapTuplesPerPage) return kInvalidOffsetNumber;
  const int lower = PageGetLower(page) + ((offnum == limit || needshuffle) ? static_cast<int>(kItemIdSize) : 0);
  // Added bound: a size beyond the page cannot fit (PostgreSQL's signed arithmetic agrees).
  if (size > kBlckSz) return kInvalidOffsetNumber;
  const int upper = static_cast<int>(PageGetUpper(page)) - static_cast<int>(MaxAlign(size));
  if (lower > upper) return kInvalidOffsetNumber;
  if (needshuffle) {
    std::memmove(page + ItemIdPos(offnum + 1), page + ItemIdPos(offnum),
                 static_cast<size_t>(limit - offnum) * kItemIdSize);
  }
  ItemIdSetNormal(page, offnum, static_cast<uint32_t>(upper), static_cast<uint32_t>(size));
  if (size > 0) std::memcpy(page + upper, item, size);  // an empty item may come with no buffer
  PageSetLower(page, static_cast<uint16_t>(lower));
  PageSetUpper(page, static_cast<uint16_t>(upper));
  return static_cast<uint16_t>(offnum);
}

void PageGetTempPageCopySpecial(const uint8_t* page, uint8_t* temp) {
  const size_t special = PageGetSpecial(page);
  if (special > kBlckSz) ThrowPageError("corrupted special pointer: " + U(static_cast<unsigned>(special)));
  PageInit(temp, kBlckSz - special);
  std::memcpy(temp + PageGetSpecial(temp), page + special, kBlckSz - special);
}

void PageRepairFragmentation(uint8_t* page) {
  CheckPagePointers(page, true);
  const int pd_lower = PageGetLower(page), pd_upper = PageGetUpper(page), pd_special = PageGetSpecial(page);
  ItemIdCompact items[kMaxLinePointers];
  const int nline = PageGetMaxOffsetNumber(page);
  int nstorage = 0, nunused = 0, finalusedlp = kInvalidOffsetNumber;
  size_t totallen = 0;
  int last_offset = pd_special;
  bool presorted = true;
  for (int i = kFirstOffsetNumber; i <= nline; ++i) {
    if (ItemIdIsUsed(page, i)) {
      if (ItemIdHasStorage(page, i)) {
        ItemIdCompact& it = items[nstorage++];
        it.offsetindex = static_cast<uint16_t>(i - 1);
        it.itemoff = ItemIdGetOffset(page, i);
        if (last_offset > it.itemoff) {
          last_offset = it.itemoff;
        } else {
          presorted = false;
        }
        if (it.itemoff < pd_upper || it.itemoff >= pd_special) {
          ThrowPageError("corrupted line pointer: " + U(static_cast<unsigned>(it.itemoff)));
        }
        it.alignedlen = static_cast<int>(MaxAlign(ItemIdGetLength(page, i)));
        // Added check: PostgreSQL does not test the item's end against pd_special.
        if (it.itemoff + it.alignedlen > pd_special) {
          ThrowPageError("corrupted line pointer: " + U(static_cast<unsigned>(it.itemoff)));
        }
        totallen += static_cast<size_t>(it.alignedlen);
      }
      finalusedlp = i;
    } else {
      ItemIdSetUnused(page, i);
      ++nunused;
    }
  }
  if (nstorage == 0) {
    PageSetUpper(page, static_cast<uint16_t>(pd_special));
  } else {
    if (totallen > static_cast<size_t>(pd_special - pd_lower)) {
      ThrowPageError("corrupted item lengths: total " + U(static_cast<unsigned>(totallen)) + ", available space " +
                     U(static_cast<unsigned>(pd_special - pd_lower)));
    }
    CompactifyTuples(items, nstorage, page, presorted);
  }
  if (finalusedlp != nline) {
    const int nunusedend = nline - finalusedlp;
    nunused -= nunusedend;
    PageSetLower(page, static_cast<uint16_t>(PageGetLower(page) - kItemIdSize * static_cast<size_t>(nunusedend)));
  }
  if (nunused > 0) {
    PageSetHasFreeLinePointers(page);
  } else {
    PageClearHasFreeLinePointers(page);
  }
}

void PageTruncateLinePointerArray(uint8_t* page) {
  bool countdone = false, sethint = false;
  int nunusedend = 0;
  for (int i = PageGetMaxOffsetNumber(page); i >= kFirstOffsetNumber; --i) {
    if (!countdone && i > kFirstOffsetNumber) {
      if (!ItemIdIsUsed(page, i)) {
        ++nunusedend;
      } else {
        countdone = true;
      }
    } else if (!ItemIdIsUsed(page, i)) {
      sethint = true;
      break;
    }
  }
  if (nunusedend > 0) {
    PageSetLower(page, static_cast<uint16_t>(PageGetLower(page) - kItemIdSize * static_cast<size_t>(nunusedend)));
  }
  if (sethint) {
    PageSetHasFreeLinePointers(page);
  } else {
    PageClearHasFreeLinePointers(page);
  }
}

size_t PageGetFreeSpace(const uint8_t* page) {
  int space = static_cast<int>(PageGetUpper(page)) - static_cast<int>(PageGetLower(page));
  if (space < static_cast<int>(kItemIdSize)) return 0;
  return static_cast<size_t>(space) - kItemIdSize;
}

size_t PageGetFreeSpaceForMultipleTuples(const uint8_t* page, int ntups) {
  int space = static_cast<int>(PageGetUpper(page)) - static_cast<int>(PageGetLower(page));
  if (space < ntups * static_cast<int>(kItemIdSize)) return 0;
  return static_cast<size_t>(space - ntups * static_cast<int>(kItemIdSize));
}

size_t PageGetExactFreeSpace(const uint8_t* page) {
  int space = static_cast<int>(PageGetUpper(page)) - static_cast<int>(PageGetLower(page));
  return space < 0 ? 0 : static_cast<size_t>(space);
}

size_t PageGetHeapFreeSpace(const uint8_t* page) {
  size_t space = PageGetFreeSpace(page);
  if (space > 0) {
    const int nline = PageGetMaxOffsetNumber(page);
    if (nline >= kMaxHeapTuplesPerPage) {
      if (PageHasFreeLinePointers(page)) {
        int offnum = kFirstOffsetNumber;
        for (; offnum <= nline; ++offnum) {
          if (!ItemIdIsUsed(page, offnum)) break;
        }
        if (offnum > nline) space = 0;
      } else {
        space = 0;
      }
    }
  }
  return space;
}

void PageIndexTupleDelete(uint8_t* page, int offnum) {
  CheckPagePointers(page, true);
  CheckIndexOffnum(page, offnum);
  int nline = PageGetMaxOffsetNumber(page);
  unsigned offset = 0, size = 0;
  CheckIndexItem(page, offnum, &offset, &size);
  size = static_cast<unsigned>(MaxAlign(size));
  // Drop the line pointer: later ones move down one slot.
  const int nbytes = static_cast<int>(PageGetLower(page)) - static_cast<int>(ItemIdPos(offnum + 1));
  if (nbytes > 0) std::memmove(page + ItemIdPos(offnum), page + ItemIdPos(offnum + 1), static_cast<size_t>(nbytes));
  // Close the gap: data between pd_upper and the deleted item moves up by its size.
  const unsigned pd_upper = PageGetUpper(page);
  if (offset > pd_upper) std::memmove(page + pd_upper + size, page + pd_upper, offset - pd_upper);
  PageSetUpper(page, static_cast<uint16_t>(pd_upper + size));
  PageSetLower(page, static_cast<uint16_t>(PageGetLower(page) - kItemIdSize));
  if (!PageIsEmpty(page)) {
    --nline;
    for (int i = 1; i <= nline; ++i) {
      if (ItemIdGetOffset(page, i) <= offset) ItemIdSetOffset(page, i, ItemIdGetOffset(page, i) + size);
    }
  }
}

void PageIndexMultiDelete(uint8_t* page, const uint16_t* itemnos, int nitems) {
  // Few items: retail deletes, last first so earlier offsets stay put.
  if (nitems <= 2) {
    while (--nitems >= 0) PageIndexTupleDelete(page, itemnos[nitems]);
    return;
  }
  CheckPagePointers(page, true);
  const int pd_lower = PageGetLower(page), pd_special = PageGetSpecial(page);
  ItemIdCompact items[kMaxLinePointers];
  uint32_t newitemids[kMaxLinePointers];
  const int nline = PageGetMaxOffsetNumber(page);
  size_t totallen = 0;
  int nused = 0, nextitm = 0, last_offset = pd_special;
  bool presorted = true;
  for (int offnum = kFirstOffsetNumber; offnum <= nline; ++offnum) {
    unsigned offset = 0, size = 0;
    CheckIndexItem(page, offnum, &offset, &size);
    if (nextitm < nitems && offnum == itemnos[nextitm]) {
      ++nextitm;
    } else {
      ItemIdCompact& it = items[nused];
      it.offsetindex = static_cast<uint16_t>(nused);
      it.itemoff = static_cast<int>(offset);
      if (last_offset > it.itemoff) {
        last_offset = it.itemoff;
      } else {
        presorted = false;
      }
      it.alignedlen = static_cast<int>(MaxAlign(size));
      totallen += static_cast<size_t>(it.alignedlen);
      newitemids[nused] = ItemIdRaw(page, offnum);
      ++nused;
    }
  }
  if (nextitm != nitems) ThrowPageError("incorrect index offsets supplied");
  if (totallen > static_cast<size_t>(pd_special - pd_lower)) {
    ThrowPageError("corrupted item lengths: total " + U(static_cast<unsigned>(totallen)) + ", available space " +
                   U(static_cast<unsigned>(pd_special - pd_lower)));
  }
  for (int i = 0; i < nused; ++i) ItemIdSetRaw(page, i + 1, newitemids[i]);
  PageSetLower(page, static_cast<uint16_t>(kSizeOfPageHeaderData + static_cast<size_t>(nused) * kItemIdSize));
  if (nused > 0) {
    CompactifyTuples(items, nused, page, presorted);
  } else {
    PageSetUpper(page, static_cast<uint16_t>(pd_special));
  }
}

void PageIndexTupleDeleteNoCompact(uint8_t* page, int offnum) {
  CheckPagePointers(page, true);
  CheckIndexOffnum(page, offnum);
  int nline = PageGetMaxOffsetNumber(page);
  unsigned offset = 0, size = 0;
  CheckIndexItem(page, offnum, &offset, &size);
  size = static_cast<unsigned>(MaxAlign(size));
  if (offnum < nline) {
    ItemIdSetUnused(page, offnum);
  } else {
    PageSetLower(page, static_cast<uint16_t>(PageGetLower(page) - kItemIdSize));
    --nline;
  }
  const unsigned pd_upper = PageGetUpper(page);
  if (offset > pd_upper) std::memmove(page + pd_upper + size, page + pd_upper, offset - pd_upper);
  PageSetUpper(page, static_cast<uint16_t>(pd_upper + size));
  if (!PageIsEmpty(page)) {
    for (int i = 1; i <= nline; ++i) {
      if (ItemIdHasStorage(page, i) && ItemIdGetOffset(page, i) <= offset) {
        ItemIdSetOffset(page, i, ItemIdGetOffset(page, i) + size);
      }
    }
  }
}

bool PageIndexTupleOverwrite(uint8_t* page, int offnum, const uint8_t* item, size_t size) {
  CheckPagePointers(page, true);
  const int itemcount = PageGetMaxOffsetNumber(page);
  CheckIndexOffnum(page, offnum);
  unsigned offset = 0, oldsize_raw = 0;
  CheckIndexItem(page, offnum, &offset, &oldsize_raw);
  const int oldsize = static_cast<int>(MaxAlign(oldsize_raw));
  const size_t alignednewsize = MaxAlign(size);
  const int pd_upper = PageGetUpper(page), pd_lower = PageGetLower(page);
  if (alignednewsize > static_cast<size_t>(oldsize + (pd_upper - pd_lower))) return false;
  const int size_diff = oldsize - static_cast<int>(alignednewsize);
  if (size_diff != 0) {
    std::memmove(page + pd_upper + size_diff, page + pd_upper, offset - static_cast<unsigned>(pd_upper));
    PageSetUpper(page, static_cast<uint16_t>(pd_upper + size_diff));
    for (int i = kFirstOffsetNumber; i <= itemcount; ++i) {
      if (ItemIdHasStorage(page, i) && ItemIdGetOffset(page, i) <= offset) {
        ItemIdSetOffset(page, i, static_cast<uint32_t>(ItemIdGetOffset(page, i) + size_diff));
      }
    }
  }
  const uint32_t flags = ItemIdGetFlags(page, offnum);
  ItemIdSetRaw(page, offnum, MakeItemId(static_cast<uint32_t>(static_cast<int>(offset) + size_diff), flags,
                                         static_cast<uint32_t>(size)));
  if (size > 0) std::memcpy(page + ItemIdGetOffset(page, offnum), item, size);
  return true;
}

}  // namespace pg
}  // namespace strata
