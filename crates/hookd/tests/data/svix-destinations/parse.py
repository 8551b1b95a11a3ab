import copy, json
from svix.models import *
base = {"id":"dest_1","status":"enabled","currentIterator":"it0","createdAt":"2024-01-01T00:00:00Z",
  "updatedAt":"2024-01-01T00:00:00Z","batchSize":100,"maxWaitSecs":10,"metadata":{},"type":"fifoEndpoint",
  "config":{"url":"https://x","headers":{"headers":{},"sensitive":[]}}}
def t(label, d, M=DestinationOut):
    try: M.model_validate(d); print("OK  ", label)
    except Exception as e: print("FAIL", label, "::", str(e).replace("\n"," | ")[:230])
t("base", base)
for k in base:
    d = copy.deepcopy(base); del d[k]; t(f"missing {k}", d)
for k in ["uid","failureReason","eventTypes","channels","nextRetryAt"]:
    d = copy.deepcopy(base); d[k]=None; t(f"{k}=null", d)
for k in ["currentIterator","metadata","batchSize"]:
    d = copy.deepcopy(base); d[k]=None; t(f"{k}=null", d)
d = copy.deepcopy(base); d["config"]={"url":"https://x","headers":{"X-A":"1"}}; t("fifo headers plain dict", d)
d = copy.deepcopy(base); d["config"]={"url":"https://x"}; t("fifo no headers", d)
d = copy.deepcopy(base); d["status"]="paused"; t("status paused", d)
d = copy.deepcopy(base); d["status"]="bogus"; t("status bogus", d)
d = copy.deepcopy(base); d["type"]="webhook"; t("type unknown", d)
d = copy.deepcopy(base); d["extraField"]=1; t("extra field", d)
d = copy.deepcopy(base); d["createdAt"]="2024-01-01T00:00:00.123456+00:00"; t("createdAt offset micro", d)
d = copy.deepcopy(base); d["type"]="pollingEndpoint"; d["config"]={}; t("polling {}", d)
d = copy.deepcopy(base); d["type"]="pollingEndpoint"; del d["config"]; t("polling no config", d)
d = copy.deepcopy(base); d["type"]="pollingEndpoint"; d["config"]=None; t("polling config null", d)
d = copy.deepcopy(base); d["type"]="rabbitMq"; d["config"]={"uri":"amqp://h","routingKey":"rk"}; t("rabbit no mandatory", d)
d = copy.deepcopy(base); d["type"]="rabbitMq"; d["config"]={"uri":"amqp://h","routingKey":"rk","mandatory":False}; t("rabbit full", d)
d = copy.deepcopy(base); d["type"]="postgres"; d["config"]={"url":"postgres://h","tableName":"t"}; t("postgres", d)
d = copy.deepcopy(base); d["type"]="sqs"; d["config"]={"queueUrl":"q"}; t("sqs no region", d)
d = copy.deepcopy(base); d["type"]="sqs"; d["config"]={"queueUrl":"q","region":"r"}; t("sqs", d)
L = {"data":[base],"iterator":None,"done":True}
t("list", L, ListResponseDestinationOut)
d = dict(L); del d["iterator"]; t("list no iterator", d, ListResponseDestinationOut)
d = dict(L); del d["done"]; t("list no done", d, ListResponseDestinationOut)
P = {"data":[{"eventType":"a.b","payload":{"k":1},"id":"msg_1","timestamp":"2024-01-01T00:00:00Z"}],"iterator":"it1","done":False}
t("poll", P, PollingEndpointOut)
d = copy.deepcopy(P); d["iterator"]=None; t("poll iterator null", d, PollingEndpointOut)
d = copy.deepcopy(P); d["data"][0]["payload"]=[1]; t("poll payload list", d, PollingEndpointOut)
d = copy.deepcopy(P); d["data"][0]["payload"]="s"; t("poll payload str", d, PollingEndpointOut)
for k in ["eventType","payload","id","timestamp"]:
    d = copy.deepcopy(P); del d["data"][0][k]; t(f"poll msg missing {k}", d, PollingEndpointOut)
d = copy.deepcopy(P); d["data"][0].update({"headers":None,"eventId":None,"channels":None,"tags":None,"deliverAt":None}); t("poll msg optional nulls", d, PollingEndpointOut)
t("transformation out no code", {"enabled":False}, DestinationTransformationOut)
t("transformation out no enabled", {"code":"x"}, DestinationTransformationOut)
t("empty resp {}", {}, EmptyResponse)
t("seek out", {"iterator":"x"}, PollingEndpointConsumerSeekOut)
