"""DVID's protobuf messages (labelops.proto, keyvalue.proto), compiled by protoc."""
