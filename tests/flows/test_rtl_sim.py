"""The and-inverter-graph simulator on a hand-written netlist, one lane and many."""
import pytest

from flows.rtl_sim import AigerSim

# q <= q ^ en (a toggle register, latch 6 initialised to 1); y = q & en
# xor: 8 = !(q & !en), 10 = !(!q & en), next = !(8 & 10) = lit 13; y = 6 & 2 = lit 14
AAG = "aag 7 1 1 1 4\n2\n6 13 1\n14\n8 6 3\n10 7 2\n12 9 11\n14 6 2\n"
MAP = "input 0 0 en\nlatch 0 0 q\noutput 0 0 y\n"


@pytest.fixture
def netlist(tmp_path):
    (tmp_path / "t.aag").write_text(AAG)
    (tmp_path / "t.map").write_text(MAP)
    return tmp_path / "t.aag", tmp_path / "t.map"


def _run(sim, inputs):
    seen = []
    for en in inputs:
        sim.set("en", en)
        sim.eval()
        seen.append(sim.get_lanes("y"))
        sim.clock()
    return seen


def test_one_lane(netlist):
    sim = AigerSim(*netlist)
    assert [y[0] for y in _run(sim, (1, 0, 1, 1, 1))] == [1, 0, 0, 1, 0]  # q: 1, 0, 0, 1, 0
    assert sim.get("y") == 0


def test_lanes_are_independent_copies(netlist):
    streams = [(1, 0, 1, 1, 1), (0, 0, 0, 0, 0), (1, 1, 1, 1, 1)]
    sim = AigerSim(*netlist, lanes=3)
    seen = _run(sim, [list(step) for step in zip(*streams)])
    for lane, stream in enumerate(streams):
        assert [y[lane] for y in seen] == [y[0] for y in _run(AigerSim(*netlist), stream)]


def test_bad_ports_and_files(netlist, tmp_path):
    sim = AigerSim(*netlist, lanes=2)
    with pytest.raises(KeyError, match="inputs: \\['en'\\]"):
        sim.set("nope", 1)
    with pytest.raises(ValueError, match="3 values for 2 lanes"):
        sim.set("en", [1, 0, 1])
    (tmp_path / "bad.aag").write_text("aig 0 0 0 0 0\n")
    with pytest.raises(ValueError, match="not an ASCII AIGER"):
        AigerSim(tmp_path / "bad.aag", netlist[1])
