{
  # Strata's C++ core. `npm install` builds it through scripts/build-native.js; without a
  # compiler Strata falls back to the pure-TypeScript core.
  'variables': {
    # 1 = build with AddressSanitizer + UBSan (scripts/test-asan.js passes --strata_sanitize=1).
    'strata_sanitize%': 0,
    # 1 = build only the benchmark floors (strata_bench.node, scripts/build-bench.js) instead of
    # the addon; they are measurement tools, never part of the shipped binary.
    'strata_bench%': 0,
    'strata_common_sources': [
      'native/block_io.cc',
      'native/codec.cc',
      'native/compaction.cc',
      'native/core.cc',
      'native/crc32.cc',
      'native/delta_arena.cc',
      'native/delta_layer.cc',
      'native/disk_btree.cc',
      'native/fault_injection.cc',
      'native/file_handles.cc',
      'native/image_layer.cc',
      'native/layer_file.cc',
      'native/layer_map.cc',
      'native/page_cache.cc',
      'native/reconstruct.cc',
      'native/walredo.cc',
      'native/pg/bufpage.cc',
      'native/pg/checksum.cc',
      'native/pg/crc32c.cc',
      'native/pg/heap_redo.cc',
      'native/pg/nbtree_redo.cc',
      'native/pg/pglz.cc',
      'native/pg/redo_record.cc',
      'native/pg/rmgr.cc',
      'native/pg/slru_redo.cc',
      'native/pg/xlogreader.cc',
    ],
  },
  'target_defaults': {
    'dependencies': [
      "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except",
      "<!(node -p \"require('path').dirname(require.resolve('zstd-napi/package.json'))\")/deps/zstd.gyp:libzstd",
    ],
    'defines': [
      'NAPI_VERSION=8',
      'NODE_ADDON_API_DISABLE_DEPRECATED',
    ],
    # Warnings apply to our sources only; zstd is built by its own target with its own flags.
    'cflags': ['-Wall', '-Wextra', '-O2', '-fvisibility=hidden'],
    'cflags!': ['-O3'],
    'cflags_cc': ['-std=c++17'],
    'cflags_cc!': ['-fno-exceptions', '-std=gnu++17', '-std=gnu++20'],
    'xcode_settings': {
      'CLANG_CXX_LANGUAGE_STANDARD': 'c++17',
      'GCC_ENABLE_CPP_EXCEPTIONS': 'YES',
      'GCC_SYMBOLS_PRIVATE_EXTERN': 'YES',
      'OTHER_CFLAGS': ['-Wall', '-Wextra', '-O2'],
    },
    'conditions': [
      ['strata_sanitize==1', {
        'cflags': ['-fsanitize=address,undefined', '-fno-omit-frame-pointer', '-fno-sanitize-recover=undefined', '-g'],
        'ldflags': ['-fsanitize=address,undefined'],
      }],
    ],
  },
  'conditions': [
    ['strata_bench==0', {
      'targets': [
        {
          'target_name': 'strata',
          'sources': ['native/addon.cc', 'native/background_thread.cc', 'native/pg/pg_addon.cc', '<@(strata_common_sources)'],
        },
      ],
    }, {
      'targets': [
        {
          'target_name': 'strata_bench',
          'sources': ['native/bench/bench_floors.cc', 'native/codec.cc'],
        },
      ],
    }],
  ],
}
