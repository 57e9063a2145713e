-- Argo CD health check for seal.dev/SealedSecret (Lua 5.1, as Argo CD runs it).
-- Install it under resource.customizations.health.seal.dev_SealedSecret in argocd-cm.
hs = {}
if obj.status == nil or obj.status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for seal-operator to unseal it"
  return hs
end
local generation = obj.metadata and obj.metadata.generation
local ready = nil
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Ready" then
    ready = condition
  end
end
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for seal-operator to unseal it"
  return hs
end
if generation ~= nil and ready.observedGeneration ~= nil and ready.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for seal-operator to unseal the latest change"
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
else
  hs.status = "Degraded"
end
hs.message = (ready.reason or "") .. ": " .. (ready.message or "")
return hs
