{
  "targets": [
    {
      "target_name": "qvol",
      "conditions": [
        ["OS=='linux'", {
          "sources": [
            "native/addon.cc",
            "native/alloc.cc",
            "native/blkdev.cc",
            "native/blob.cc",
            "native/common.cc",
            "native/copy.cc",
            "native/crypto.cc",
            "native/devmapper.cc",
            "native/durable.cc",
            "native/extents.cc",
            "native/lock.cc",
            "native/open.cc",
            "native/probe.cc",
            "native/socket.cc",
            "native/stream.cc",
            "native/zero.cc",
            "native/sys/aead.cc",
            "native/sys/alloc.cc",
            "native/sys/blkdev.cc",
            "native/sys/clone.cc",
            "native/sys/copy_job.cc",
            "native/sys/crc32.cc",
            "native/sys/dm_ioctl.cc",
            "native/sys/dm_node.cc",
            "native/sys/durable.cc",
            "native/sys/fd_stream.cc",
            "native/sys/loop_attach.cc",
            "native/sys/open_beneath.cc",
            "native/sys/peer_cred.cc",
            "native/sys/sparse_format.cc",
            "native/sys/sparse_plan.cc",
            "native/sys/sorted_refs.cc",
            "native/sys/sparse_writer.cc",
            "native/sys/stream_export.cc",
            "native/sys/stream_import.cc",
            "native/sys/extents.cc",
            "native/sys/zero.cc"
          ],
          "libraries": ["-lsodium", "-lzstd"]
        }]
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=9", "NAPI_CPP_EXCEPTIONS", "_FILE_OFFSET_BITS=64", "_GNU_SOURCE"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=gnu++17", "-fexceptions", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
