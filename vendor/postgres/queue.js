// postgres.js 3.4.9 src/queue.js with the fix: remove() searches only the live region and
// resets an emptied queue; shift() compacts the array once holes make up half of it.
export default Queue

function Queue(initial = []) {
  let xs = initial.slice()
  let index = 0

  return {
    get length() {
      return xs.length - index
    },
    remove: (x) => {
      const i = xs.indexOf(x, index)
      if (i === -1)
        return null
      xs.splice(i, 1)
      if (index === xs.length) {
        index = 0
        xs = []
      }
      return x
    },
    peek: () => xs[index],
    push: (x) => (xs.push(x), x),
    shift: () => {
      const out = xs[index++]

      if (index === xs.length) {
        index = 0
        xs = []
      } else if (index >= 1024 && index * 2 >= xs.length) {
        xs = xs.slice(index)
        index = 0
      } else {
        xs[index - 1] = undefined
      }

      return out
    }
  }
}
