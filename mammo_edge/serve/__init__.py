"""``mammo-edge serve``: a DICOM node for the PACS and an HTTP scoring service.

Installed by the ``serve`` extra (``pip install "mammo-edge[serve]"``: pynetdicom,
highdicom, FastAPI, uvicorn). Nothing here is imported by ``import mammo_edge``; each
module imports its heavy dependency itself. The parts, one concept per module:

- :mod:`.spool`: received instances on disk, written atomically, kept until scored;
- :mod:`.records`: the ``results.jsonl`` record (a ``PredictionResult`` plus DICOM identity)
  and its one writer and reader;
- :mod:`.instances`: which received objects are scorable mammograms;
- :mod:`.studies`: scores a study once no instance has arrived for ``stable_after`` seconds;
- :mod:`.structured_report`, :mod:`.overlay`: the TID 1500 SR and the heatmap Secondary Capture;
  :mod:`.source_header`: the image's patient and study as they copy it (type-2 values empty
  where absent);
- :mod:`.quarantine`: a study that keeps failing: bounded retries, then ``spool/failed/``;
- :mod:`.outbox`: results waiting to be sent by C-STORE, retried with back-off;
- :mod:`.dicom_node`: the pynetdicom SCP (C-ECHO, C-STORE); :mod:`.access`: its doors
  (DICOM TLS and HTTPS, the calling AE allow list);
- :mod:`.http_app`: the FastAPI application; :mod:`.batcher`: requests batched for the model;
- :mod:`.metrics`: counters in the Prometheus text format;
- :mod:`.service`: starts the parts, stops them on SIGTERM.

docs/serve.md describes the service.
"""
