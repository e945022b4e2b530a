#!/usr/bin/python3
# tests/vectors/modbus/pymodbus_peer.py: a real peer for tests/unit/test_modbus_pymodbus.c.
# Encodes requests with pymodbus's client framer, lets pymodbus's own server logic (execute
# against a datastore) answer them, and prints each ADU as `req|rsp MessageClass HEX`.
# Needs Debian's python3-pymodbus (3.0): run with /usr/bin/python3, not a pyenv python.
import inspect, logging, sys
logging.disable(logging.CRITICAL)  # pymodbus logs exception responses it builds
from pymodbus.framer.socket_framer import ModbusSocketFramer
from pymodbus.factory import ClientDecoder, ServerDecoder
from pymodbus.datastore import ModbusSlaveContext, ModbusSequentialDataBlock
from pymodbus.device import ModbusDeviceIdentification
import pymodbus.bit_read_message as br, pymodbus.bit_write_message as bw
import pymodbus.register_read_message as rr, pymodbus.register_write_message as rw
import pymodbus.diag_message as dg, pymodbus.file_message as fm, pymodbus.mei_message as mm, pymodbus.other_message as om
ctx = ModbusSlaveContext(di=ModbusSequentialDataBlock(0,[1]*100), co=ModbusSequentialDataBlock(0,[0]*100),
                         hr=ModbusSequentialDataBlock(0,list(range(100))), ir=ModbusSequentialDataBlock(0,[7]*100))
reqs = [
 om.ReadExceptionStatusRequest(unit=1),
 dg.ReturnQueryDataRequest(0xA537, unit=1),
 dg.RestartCommunicationsOptionRequest(unit=1),
 dg.ReturnDiagnosticRegisterRequest(unit=1),
 dg.ChangeAsciiInputDelimiterRequest(unit=1),
 dg.ClearCountersRequest(unit=1),
 dg.ReturnBusMessageCountRequest(unit=1),
 dg.ReturnSlaveBusCharacterOverrunCountRequest(unit=1),
 dg.ClearOverrunCountRequest(unit=1),
 om.GetCommEventCounterRequest(unit=1),
 om.GetCommEventLogRequest(unit=1),
 om.ReportSlaveIdRequest(unit=1),
 fm.ReadFileRecordRequest([fm.FileRecord(reference_type=6, file_number=4, record_number=1, record_length=2)], unit=1),
 fm.WriteFileRecordRequest([fm.FileRecord(reference_type=6, file_number=4, record_number=7, record_data=b'\x06\xaf\x04\xbe\x10\x0d')], unit=1),
 rw.MaskWriteRegisterRequest(4, 0x00F2, 0x0025, unit=1),
 rr.ReadWriteMultipleRegistersRequest(read_address=3, read_count=6, write_address=14, write_registers=[255,255,255], unit=1),
 fm.ReadFifoQueueRequest(5, unit=1),
 mm.ReadDeviceInformationRequest(read_code=1, object_id=0, unit=1),
 br.ReadCoilsRequest(19, 19, unit=1),
 br.ReadDiscreteInputsRequest(3, 10, unit=1),
 rr.ReadHoldingRegistersRequest(10, 3, unit=1),
 rr.ReadInputRegistersRequest(8, 2, unit=1),
 bw.WriteSingleCoilRequest(5, True, unit=1),
 rw.WriteSingleRegisterRequest(1, 0x1234, unit=1),
 bw.WriteMultipleCoilsRequest(0, [True, False, True] * 3, unit=1),
 rw.WriteMultipleRegistersRequest(0, [1, 2, 3], unit=1),
 rr.ReadHoldingRegistersRequest(90, 20, unit=1),
]
cf = ModbusSocketFramer(ClientDecoder()); sf = ModbusSocketFramer(ServerDecoder())
for i, q in enumerate(reqs, 1):
    q.transaction_id = i
    name = type(q).__name__
    print('req', name, cf.buildPacket(q).hex())
    try:
        r = q.execute(ctx)
        if inspect.iscoroutine(r):
            import asyncio; r = asyncio.run(r)
    except Exception as e:
        print('#', name, 'execute failed', e, file=sys.stderr); continue
    if r is None:
        continue
    r.transaction_id = i; r.unit_id = 1
    print('rsp', type(r).__name__, sf.buildPacket(r).hex())
