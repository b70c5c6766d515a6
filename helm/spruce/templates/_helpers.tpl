{{/* The four components, in start order. */}}
{{- define "spruce.components" -}}
{{- list "core" "search" "scheduler" "gateway" | toJson -}}
{{- end -}}

{{/* The services behind the gateway: each serves gRPC (with a headless Service), owns a
     database and talks to the broker. */}}
{{- define "spruce.backends" -}}
{{- list "core" "search" "scheduler" | toJson -}}
{{- end -}}

{{- define "spruce.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* spruce.name: (dict "root" $ "component" "core") -> <fullname>-core */}}
{{- define "spruce.name" -}}
{{- printf "%s-%s" (include "spruce.fullname" .root) .component -}}
{{- end -}}

{{/* Every pod and resource of the release (takes the root context). */}}
{{- define "spruce.releaseLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "spruce.selectorLabels" -}}
{{ include "spruce.releaseLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "spruce.labels" -}}
{{ include "spruce.selectorLabels" . }}
app.kubernetes.io/part-of: spruce
app.kubernetes.io/version: {{ .root.Values.image.tag | default .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "spruce.image" -}}
{{- $image := .root.Values.image -}}
{{- $repository := printf "%s-%s" $image.repositoryPrefix .component -}}
{{- if $image.registry -}}{{- $repository = printf "%s/%s" $image.registry $repository -}}{{- end -}}
{{- printf "%s:%s" $repository ($image.tag | default .root.Chart.AppVersion) -}}
{{- end -}}

{{/* A component's own ServiceAccount (takes root and component): Vault's Kubernetes auth
     binds each to a role of its own. */}}
{{- define "spruce.serviceAccountName" -}}
{{- if .root.Values.serviceAccount.create -}}{{ include "spruce.name" . }}{{- else -}}default{{- end -}}
{{- end -}}

{{/* The Vault KV path (v2 API) of a secret `name` in this environment. */}}
{{- define "spruce.vaultPath" -}}
{{- printf "%s/data/%s/%s" .root.Values.secrets.vault.mount .root.Values.environment .name -}}
{{- end -}}

{{/* Where secret files appear: the mounted Secret, or the Vault agent's folder. */}}
{{- define "spruce.secretDir" -}}
{{- if eq .Values.secrets.source "vault" -}}/vault/secrets{{- else -}}{{ .Values.secrets.mountPath }}{{- end -}}
{{- end -}}

{{/* The secrets a component reads, as a JSON list of names. Users' access tokens are
     verified everywhere with core's public key (auth-public-key); the gateway signs the calls
     anonymous clients make with its own key, and search the loading of its read model with
     its own, which core alone accepts, each on its own RPCs (SERVICE_RPCS in
     crates/core/src/startup.rs). Core asks search's duration model with core's own key
     (SERVICE_RPCS in crates/search/src/startup.rs). */}}
{{- define "spruce.secretNames" -}}
{{- $values := index .root.Values .component -}}
{{- $names := list -}}
{{- if has .component (include "spruce.backends" .root | fromJsonArray) -}}{{- $names = append $names "amqp-url" -}}{{- end -}}
{{- if eq .component "core" -}}
{{- $names = concat $names (list "auth-private-key" "gateway-public-key" "search-public-key" "scheduler-public-key") -}}
{{- if eq (dig "payments" "provider" "fake" $values.settings) "stripe" -}}{{- $names = append $names "stripe-secret-key" -}}{{- end -}}
{{- end -}}
{{- if eq .component "gateway" -}}{{- $names = concat $names (list "redis-url" "auth-public-key" "gateway-private-key") -}}{{- end -}}
{{- if has .component (list "search" "scheduler") -}}{{- $names = append $names "auth-public-key" -}}{{- end -}}
{{- if eq .component "search" -}}{{- $names = concat $names (list "search-private-key" "scheduler-public-key" "redis-url") -}}{{- end -}}
{{- if eq .component "scheduler" -}}
{{- $names = concat $names (list "scheduler-private-key" "analytics-hash-key") -}}
{{- if dig "email" "username" "" $values.settings -}}{{- $names = append $names "smtp-password" -}}{{- end -}}
{{- if eq (dig "push" "provider" "log" $values.settings) "http" -}}{{- $names = append $names "push-token" -}}{{- end -}}
{{- end -}}
{{- $names | toJson -}}
{{- end -}}

{{/* Settings keys (`section.key_file`) that point at each secret file. */}}
{{- define "spruce.secretKeys" -}}
{{- dict "amqp-url" (list "bus" "url_file") "redis-url" (list "redis" "url_file") "auth-private-key" (list "auth" "private_key_file") "auth-public-key" (list "auth" "public_key_file") "gateway-private-key" (list "identity" "private_key_file") "gateway-public-key" (list "callers" "service_keys" "gateway_file") "search-private-key" (list "identity" "private_key_file") "search-public-key" (list "callers" "service_keys" "search_file") "scheduler-private-key" (list "identity" "private_key_file") "scheduler-public-key" (list "callers" "service_keys" "scheduler_file") "stripe-secret-key" (list "payments" "stripe" "secret_key_file") "smtp-password" (list "email" "password_file") "push-token" (list "push" "token_file") "analytics-hash-key" (list "analytics" "hash_key_file") | toJson -}}
{{- end -}}

{{/* The merged settings of a component as a dict: shared config, the component's own,
     the in-cluster addresses, the secret files and (scheduler) the job switches. */}}
{{- define "spruce.settings" -}}
{{- $root := .root -}}
{{- $values := index $root.Values .component -}}
{{- $settings := deepCopy $root.Values.config -}}
{{- if eq .component "gateway" -}}
{{- $_ := unset $settings "database" -}}
{{- $_ := unset $settings "bus" -}}
{{- end -}}
{{- if $root.Values.flagd.enabled -}}
{{- $flags := dict "flags" (dict "sync" (printf "%s:%v" (include "spruce.name" (dict "root" $root "component" "flagd")) $root.Values.flagd.ports.sync)) -}}
{{- $settings = mustMergeOverwrite $settings $flags -}}
{{- end -}}
{{- $settings = mustMergeOverwrite $settings (deepCopy ($values.settings | default dict)) -}}
{{- if eq .component "gateway" -}}
{{- $upstreams := dict
    "core" (dict "url" (include "spruce.grpcUrl" (dict "root" $root "component" "core")))
    "search" (dict "url" (include "spruce.grpcUrl" (dict "root" $root "component" "search")))
    "scheduler" (dict "url" (include "spruce.grpcUrl" (dict "root" $root "component" "scheduler"))) -}}
{{- $settings = mustMergeOverwrite $upstreams $settings -}}
{{- end -}}
{{- if has .component (list "gateway" "scheduler") -}}
{{- $store := $root.Values.storage -}}
{{- $storage := dict "url" "file:///tmp/spruce-objects" "url_ttl" $store.urlTtl -}}
{{- if $store.bucket -}}
{{- $_ := set $storage "url" (trimSuffix "/" (printf "s3://%s/%s" $store.bucket $store.prefix)) -}}
{{- end -}}
{{- if $store.region -}}{{- $_ := set $storage "region" $store.region -}}{{- end -}}
{{- if and (eq .component "gateway") $values.ingress.host -}}
{{- $_ := set $storage "public_url" (printf "https://%s/v1/files" $values.ingress.host) -}}
{{- end -}}
{{- $settings = mustMergeOverwrite (dict "storage" $storage) $settings -}}
{{- end -}}
{{- if eq .component "core" -}}
{{- $search := dict "search" (dict "url" (include "spruce.grpcUrl" (dict "root" $root "component" "search"))) -}}
{{- $settings = mustMergeOverwrite $search $settings -}}
{{- end -}}
{{- if eq .component "search" -}}
{{- $core := dict "core" (dict "url" (include "spruce.grpcUrl" (dict "root" $root "component" "core"))) -}}
{{- $settings = mustMergeOverwrite $core $settings -}}
{{- /* Core prices bookings through search, signing its service tokens with its own key:
     search verifies them with core's public key, the file it already reads. */ -}}
{{- $callers := dict "callers" (dict "service_keys" (dict "core_file" (printf "%s/auth-public-key" (include "spruce.secretDir" $root)))) -}}
{{- $settings = mustMergeOverwrite $settings $callers -}}
{{- end -}}
{{- if eq .component "scheduler" -}}
{{- $upstreams := dict
    "core" (dict "url" (include "spruce.grpcUrl" (dict "root" $root "component" "core")))
    "search" (dict "url" (include "spruce.grpcUrl" (dict "root" $root "component" "search"))) -}}
{{- $settings = mustMergeOverwrite $upstreams $settings -}}
{{- $_ := set $settings "jobs" (deepCopy $values.jobs) -}}
{{- end -}}
{{- $keys := include "spruce.secretKeys" . | fromJson -}}
{{- $dir := include "spruce.secretDir" $root -}}
{{- range $name := include "spruce.secretNames" . | fromJsonArray -}}
{{- $path := index $keys $name -}}
{{- $table := $settings -}}
{{- range $section := initial $path -}}
{{- if not (hasKey $table $section) -}}{{- $_ := set $table $section dict -}}{{- end -}}
{{- $table = index $table $section -}}
{{- end -}}
{{- $_ := set $table (last $path) (printf "%s/%s" $dir $name) -}}
{{- end -}}
{{- if has .component (include "spruce.backends" .root | fromJsonArray) -}}
{{- /* Each service logs in as its own database user, with the password the database
     Secret holds for it (see "spruce.databaseVolume"). */ -}}
{{- $mount := $root.Values.secrets.database.mountPath -}}
{{- $database := dict "user_file" (printf "%s/%s-user" $mount .component) "password_file" (printf "%s/%s" $mount .component) -}}
{{- $database = mustMergeOverwrite $database ($settings.database | default dict) -}}
{{- if and (eq (toString $database.ssl_mode) "verify-full") $root.Values.secrets.database.caConfigMap -}}
{{- $_ := set $database "ssl_root_cert" (printf "%s/ca.pem" $root.Values.secrets.database.caMountPath) -}}
{{- end -}}
{{- $_ := set $settings "database" $database -}}
{{- end -}}
{{- $_ := set $settings "http" (dict "port" $values.ports.http "drain" (printf "%dms" (int $root.Values.shutdown.drainMs))) -}}
{{- if $values.ports.grpc -}}{{- $_ := set $settings "grpc" (dict "port" $values.ports.grpc) -}}{{- end -}}
{{- $settings | toJson -}}
{{- end -}}

{{/* A component's settings file, /etc/spruce/default.toml. */}}
{{- define "spruce.settingsToml" -}}
{{ include "spruce.toml" (dict "prefix" "" "values" (include "spruce.settings" . | fromJson)) }}
{{- end -}}

{{/* What `migrate` reads: the database and telemetry sections alone (it needs no other
     secret, and the migrations Job mounts none). */}}
{{- define "spruce.migrateSettingsToml" -}}
{{- $settings := include "spruce.settings" . | fromJson -}}
{{ include "spruce.toml" (dict "prefix" "" "values" (pick $settings "database" "telemetry")) }}
{{- end -}}

{{/* Renders a dict as TOML: scalars and lists as `key = value`, dicts as [tables]. */}}
{{- define "spruce.toml" -}}
{{- $prefix := .prefix -}}
{{- $scalars := dict -}}
{{- $tables := dict -}}
{{- range $key, $value := .values -}}
{{- if kindIs "map" $value -}}{{- $_ := set $tables $key $value -}}{{- else -}}{{- $_ := set $scalars $key $value -}}{{- end -}}
{{- end -}}
{{- if and $prefix (gt (len $scalars) 0) }}
[{{ $prefix }}]
{{- end -}}
{{- range $key, $value := $scalars }}
{{ $key | quote }} = {{ toJson $value }}
{{- end -}}
{{- range $key, $value := $tables -}}
{{- $name := $key | quote -}}
{{- if $prefix -}}{{- $name = printf "%s.%s" $prefix ($key | quote) -}}{{- end -}}
{{- include "spruce.toml" (dict "prefix" $name "values" $value) -}}
{{- end -}}
{{- end -}}

{{/* The Secret's keys `names` as files (existingSecret only; Vault's agent writes its own). */}}
{{- define "spruce.secretVolume" -}}
{{- if eq .root.Values.secrets.source "existingSecret" }}
- name: secrets
  secret:
    secretName: {{ .root.Values.secrets.existingSecret }}
    defaultMode: 0440
    items:
      {{- range $name := .names }}
      - {key: {{ $name }}, path: {{ $name }}}
      {{- end }}
{{- end }}
{{- end -}}

{{/* A component's database password as a file, from the Secret the platform stack writes
     in every environment (deploy/terraform/platform). No subPath: the kubelet refreshes
     the file when the Secret changes, and the service reads it again. */}}
{{- define "spruce.databaseVolume" }}
- name: database-{{ .component }}
  secret:
    secretName: {{ .root.Values.secrets.database.secretName }}
    defaultMode: 0440
    items:
      - {key: {{ .component }}, path: {{ .component }}}
      - {key: {{ .component }}-user, path: {{ .component }}-user}
{{- end -}}

{{/* The database's CA bundle as a file (secrets.database.caConfigMap), once per pod. */}}
{{- define "spruce.databaseCaVolume" }}
{{- if .Values.secrets.database.caConfigMap }}
- name: database-ca
  configMap:
    name: {{ .Values.secrets.database.caConfigMap }}
    items:
      - {key: ca.pem, path: ca.pem}
{{- end }}
{{- end -}}

{{/* Where a backend's database login and the CA bundle are mounted. */}}
{{- define "spruce.databaseMounts" }}
- {name: database-{{ .component }}, mountPath: {{ .root.Values.secrets.database.mountPath }}, readOnly: true}
{{- if .root.Values.secrets.database.caConfigMap }}
- {name: database-ca, mountPath: {{ .root.Values.secrets.database.caMountPath }}, readOnly: true}
{{- end }}
{{- end -}}

{{/* Pod annotations asking Vault's agent to write each secret to /vault/secrets/<name>,
     logged in as the component's own role. */}}
{{- define "spruce.vaultAnnotations" -}}
{{- $root := .root -}}
{{- if eq $root.Values.secrets.source "vault" }}
vault.hashicorp.com/agent-inject: "true"
vault.hashicorp.com/role: {{ printf "%s-%s" $root.Values.secrets.vault.rolePrefix .component | quote }}
{{- range $name := .names }}
{{- $path := include "spruce.vaultPath" (dict "root" $root "name" $name) }}
vault.hashicorp.com/agent-inject-secret-{{ $name }}: {{ $path | quote }}
vault.hashicorp.com/agent-inject-template-{{ $name }}: |
  {{`{{- with secret "`}}{{ $path }}{{`" -}}{{ .Data.data.value }}{{- end -}}`}}
{{- end }}
{{- end }}
{{- end -}}

{{/* checkov's Kubernetes checks this chart answers differently, each with its reason. */}}
{{- define "spruce.checkovSkips" -}}
checkov.io/skip1: CKV_K8S_11=No CPU limits on purpose - CFS throttling adds latency tails; requests reserve CPU and the HPA scales
checkov.io/skip2: CKV_K8S_43=Images are tagged with the commit in ECR repositories whose tags are immutable, which pins them as a digest would
checkov.io/skip3: CKV_K8S_15=IfNotPresent is safe with immutable commit tags and avoids a registry round trip per pod start
checkov.io/skip4: CKV_K8S_38=The token is mounted only when secrets.source is vault - the Vault agent logs in with it
{{- end -}}

{{/* Egress every pod of the release needs: DNS, the datastores (PostgreSQL, RabbitMQ,
Redis) and the OpenTelemetry collector, and Vault where the secrets come from it. */}}
{{- define "spruce.egressToDatastores" -}}
{{- $np := .Values.networkPolicy -}}
# DNS
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: kube-system
  ports:
    - {port: 53, protocol: UDP}
    - {port: 53, protocol: TCP}
# Datastores and the OpenTelemetry collector.
- to:
    {{- range $cidr := $np.datastoreCIDRs }}
    - ipBlock: {cidr: {{ $cidr }}}
    {{- end }}
  ports:
    {{- range $port := $np.datastorePorts }}
    - {port: {{ $port }}, protocol: TCP}
    {{- end }}
{{- if eq .Values.secrets.source "vault" }}
# Vault, for the agent that writes the secret files.
- to:
    {{- range $cidr := $np.vault.cidrs }}
    - ipBlock: {cidr: {{ $cidr }}}
    {{- end }}
  ports:
    - {port: {{ $np.vault.port }}, protocol: TCP}
{{- end }}
{{- end -}}

{{/* A service's gRPC URL for its callers: the headless Service, whose name resolves to
every ready pod, so that callers balance over the replicas (one HTTP/2 connection through a
ClusterIP would pin each caller to one pod). */}}
{{- define "spruce.grpcUrl" -}}
{{- printf "http://%s-headless:%v" (include "spruce.name" .) (index .root.Values .component).ports.grpc -}}
{{- end -}}

{{/* spruce.kedaScaled: "true" when the component scales through KEDA (see
     scaledobject.yaml); hpa.yaml renders a CPU HPA otherwise. */}}
{{- define "spruce.kedaScaled" -}}
{{- $values := index .root.Values .component -}}
{{- $keda := dig "keda" "enabled" false $values.autoscaling -}}
{{- $api := or .root.Values.keda.assumeAPI (.root.Capabilities.APIVersions.Has "keda.sh/v1alpha1/ScaledObject") -}}
{{- if and $values.enabled $values.autoscaling.enabled $keda -}}
{{- if not (has .component (list "search" "scheduler")) -}}
{{- fail (printf "%s.autoscaling.keda: only search and the scheduler scale on work" .component) -}}
{{- end -}}
{{- $api -}}
{{- else -}}
false
{{- end -}}
{{- end -}}

{{/* spruce.kedaQuery: the work a component scales on, per replica as KEDA divides it.
     The scheduler: events waiting in its queue (the consumers report it; parked events
     are not work a replica can do). Search: the gRPC calls it answers a second, as each
     replica consumes every event into its own read model (more replicas drain no queue
     faster; they share the reads). */}}
{{- define "spruce.kedaQuery" -}}
{{- $namespace := .root.Release.Namespace -}}
{{- if eq .component "scheduler" -}}
max(messaging_queue_messages_ready{namespace="{{ $namespace }}", component="scheduler", queue!~".*\\.parked"})
{{- else -}}
sum(rate(rpc_server_duration_seconds_count{namespace="{{ $namespace }}", component="search"}[2m]))
{{- end -}}
{{- end -}}
