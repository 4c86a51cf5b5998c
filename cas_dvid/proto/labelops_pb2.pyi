from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RenumberOp(_message.Message):
    __slots__ = ("mutid", "target", "newlabel")
    MUTID_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    NEWLABEL_FIELD_NUMBER: _ClassVar[int]
    mutid: int
    target: int
    newlabel: int
    def __init__(self, mutid: _Optional[int] = ..., target: _Optional[int] = ..., newlabel: _Optional[int] = ...) -> None: ...

class MergeOp(_message.Message):
    __slots__ = ("mutid", "target", "merged")
    MUTID_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    MERGED_FIELD_NUMBER: _ClassVar[int]
    mutid: int
    target: int
    merged: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, mutid: _Optional[int] = ..., target: _Optional[int] = ..., merged: _Optional[_Iterable[int]] = ...) -> None: ...

class CleaveOp(_message.Message):
    __slots__ = ("mutid", "target", "cleavedlabel", "cleaved")
    MUTID_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    CLEAVEDLABEL_FIELD_NUMBER: _ClassVar[int]
    CLEAVED_FIELD_NUMBER: _ClassVar[int]
    mutid: int
    target: int
    cleavedlabel: int
    cleaved: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, mutid: _Optional[int] = ..., target: _Optional[int] = ..., cleavedlabel: _Optional[int] = ..., cleaved: _Optional[_Iterable[int]] = ...) -> None: ...

class MappingOp(_message.Message):
    __slots__ = ("mutid", "mapped", "original")
    MUTID_FIELD_NUMBER: _ClassVar[int]
    MAPPED_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_FIELD_NUMBER: _ClassVar[int]
    mutid: int
    mapped: int
    original: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, mutid: _Optional[int] = ..., mapped: _Optional[int] = ..., original: _Optional[_Iterable[int]] = ...) -> None: ...

class MappingOps(_message.Message):
    __slots__ = ("mappings",)
    MAPPINGS_FIELD_NUMBER: _ClassVar[int]
    mappings: _containers.RepeatedCompositeFieldContainer[MappingOp]
    def __init__(self, mappings: _Optional[_Iterable[_Union[MappingOp, _Mapping]]] = ...) -> None: ...

class SplitOp(_message.Message):
    __slots__ = ("mutid", "target", "newlabel", "coarse", "rles", "svsplits")
    class SvsplitsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: SVSplit
        def __init__(self, key: _Optional[int] = ..., value: _Optional[_Union[SVSplit, _Mapping]] = ...) -> None: ...
    MUTID_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    NEWLABEL_FIELD_NUMBER: _ClassVar[int]
    COARSE_FIELD_NUMBER: _ClassVar[int]
    RLES_FIELD_NUMBER: _ClassVar[int]
    SVSPLITS_FIELD_NUMBER: _ClassVar[int]
    mutid: int
    target: int
    newlabel: int
    coarse: bool
    rles: bytes
    svsplits: _containers.MessageMap[int, SVSplit]
    def __init__(self, mutid: _Optional[int] = ..., target: _Optional[int] = ..., newlabel: _Optional[int] = ..., coarse: _Optional[bool] = ..., rles: _Optional[bytes] = ..., svsplits: _Optional[_Mapping[int, SVSplit]] = ...) -> None: ...

class SVSplit(_message.Message):
    __slots__ = ("splitlabel", "remainlabel")
    SPLITLABEL_FIELD_NUMBER: _ClassVar[int]
    REMAINLABEL_FIELD_NUMBER: _ClassVar[int]
    splitlabel: int
    remainlabel: int
    def __init__(self, splitlabel: _Optional[int] = ..., remainlabel: _Optional[int] = ...) -> None: ...

class SupervoxelSplitOp(_message.Message):
    __slots__ = ("mutid", "supervoxel", "splitlabel", "remainlabel")
    MUTID_FIELD_NUMBER: _ClassVar[int]
    SUPERVOXEL_FIELD_NUMBER: _ClassVar[int]
    SPLITLABEL_FIELD_NUMBER: _ClassVar[int]
    REMAINLABEL_FIELD_NUMBER: _ClassVar[int]
    mutid: int
    supervoxel: int
    splitlabel: int
    remainlabel: int
    def __init__(self, mutid: _Optional[int] = ..., supervoxel: _Optional[int] = ..., splitlabel: _Optional[int] = ..., remainlabel: _Optional[int] = ...) -> None: ...

class OpCompleted(_message.Message):
    __slots__ = ("mutid", "stage")
    MUTID_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    mutid: int
    stage: str
    def __init__(self, mutid: _Optional[int] = ..., stage: _Optional[str] = ...) -> None: ...

class Affinity(_message.Message):
    __slots__ = ("label1", "label2", "value")
    LABEL1_FIELD_NUMBER: _ClassVar[int]
    LABEL2_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    label1: int
    label2: int
    value: float
    def __init__(self, label1: _Optional[int] = ..., label2: _Optional[int] = ..., value: _Optional[float] = ...) -> None: ...

class Affinities(_message.Message):
    __slots__ = ("labels", "affinities")
    LABELS_FIELD_NUMBER: _ClassVar[int]
    AFFINITIES_FIELD_NUMBER: _ClassVar[int]
    labels: _containers.RepeatedScalarFieldContainer[int]
    affinities: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, labels: _Optional[_Iterable[int]] = ..., affinities: _Optional[_Iterable[float]] = ...) -> None: ...

class AffinityTable(_message.Message):
    __slots__ = ("table",)
    class TableEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: Affinities
        def __init__(self, key: _Optional[int] = ..., value: _Optional[_Union[Affinities, _Mapping]] = ...) -> None: ...
    TABLE_FIELD_NUMBER: _ClassVar[int]
    table: _containers.MessageMap[int, Affinities]
    def __init__(self, table: _Optional[_Mapping[int, Affinities]] = ...) -> None: ...

class SVCount(_message.Message):
    __slots__ = ("counts", "surface_mutid")
    class CountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    SURFACE_MUTID_FIELD_NUMBER: _ClassVar[int]
    counts: _containers.ScalarMap[int, int]
    surface_mutid: int
    def __init__(self, counts: _Optional[_Mapping[int, int]] = ..., surface_mutid: _Optional[int] = ...) -> None: ...

class LabelIndex(_message.Message):
    __slots__ = ("blocks", "label", "last_mutid", "last_mod_time", "last_mod_user", "last_mod_app")
    class BlocksEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: SVCount
        def __init__(self, key: _Optional[int] = ..., value: _Optional[_Union[SVCount, _Mapping]] = ...) -> None: ...
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    LAST_MUTID_FIELD_NUMBER: _ClassVar[int]
    LAST_MOD_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_MOD_USER_FIELD_NUMBER: _ClassVar[int]
    LAST_MOD_APP_FIELD_NUMBER: _ClassVar[int]
    blocks: _containers.MessageMap[int, SVCount]
    label: int
    last_mutid: int
    last_mod_time: str
    last_mod_user: str
    last_mod_app: str
    def __init__(self, blocks: _Optional[_Mapping[int, SVCount]] = ..., label: _Optional[int] = ..., last_mutid: _Optional[int] = ..., last_mod_time: _Optional[str] = ..., last_mod_user: _Optional[str] = ..., last_mod_app: _Optional[str] = ...) -> None: ...

class LabelIndices(_message.Message):
    __slots__ = ("indices",)
    INDICES_FIELD_NUMBER: _ClassVar[int]
    indices: _containers.RepeatedCompositeFieldContainer[LabelIndex]
    def __init__(self, indices: _Optional[_Iterable[_Union[LabelIndex, _Mapping]]] = ...) -> None: ...
