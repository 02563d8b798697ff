-- matrix_multiply: dense float matrix product with arrays of arrays.
local function matgen(n, seed)
  local tmp = 1.0 / n / n
  local m = {}
  for i = 0, n - 1 do
    local row = {}
    for j = 0, n - 1 do
      row[j] = tmp * (i - j + seed) * (i + j)
    end
    m[i] = row
  end
  return m
end

local function transpose(n, m)
  local t = {}
  for i = 0, n - 1 do
    local row = {}
    for j = 0, n - 1 do
      row[j] = m[j][i]
    end
    t[i] = row
  end
  return t
end

local function matmul(n, a, b)
  local bt = transpose(n, b)
  local c = {}
  for i = 0, n - 1 do
    local ai = a[i]
    local row = {}
    for j = 0, n - 1 do
      local bj = bt[j]
      local sum = 0.0
      for k = 0, n - 1 do
        sum = sum + ai[k] * bj[k]
      end
      row[j] = sum
    end
    c[i] = row
  end
  return c
end

local function main()
  local n = 385
  local a = matgen(n, 0)
  local b = matgen(n, 1)
  local c = matmul(n, a, b)
  local total = 0.0
  for i = 0, n - 1 do
    local row = c[i]
    for j = 0, n - 1 do
      total = total + row[j]
    end
  end
  local half = math.floor(n / 2)
  print(string.format("%.9f", c[half][half]))
  print(string.format("%.9f", total))
end
main()
