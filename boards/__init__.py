"""FPGA boards and resource counts: pure data, no side effects."""
from boards.catalog import FAMILIES, Board, Family, BoardError, board_from_mapping, catalog, get_board, load_board_file
from boards.resources import RESOURCE_NAMES, Resources

__all__ = [
    "FAMILIES", "Board", "BoardError", "Family", "RESOURCE_NAMES", "Resources",
    "board_from_mapping", "catalog", "get_board", "load_board_file",
]
